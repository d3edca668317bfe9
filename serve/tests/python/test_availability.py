"""The `/metrics` and `/healthz` port against callers that hold connections or hammer it
(issue #30, point 1): the kubelet's probe keeps answering, and `/metrics` stays cheap."""

import os
import signal
import socket
import threading
import time

from conftest import http_get

# Four "pods" on loopback addresses of their own; the probe comes from 127.0.0.1, as the
# kubelet's from its node.
PODS = [f"127.0.0.{n}" for n in range(2, 6)]


def hold(port, count, half_request=True):
    """`count` connections from the pods' addresses, every other one with an unfinished request
    line."""
    held = []
    for i in range(count):
        s = socket.socket()
        s.bind((PODS[i % len(PODS)], 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            if half_request and i % 2:
                s.sendall(b"GET /metr")
        except OSError:
            pass
        held.append(s)
    return held


def closed_by_server(s, within):
    """Whether the server closes `s` (EOF or reset) within `within` seconds."""
    s.settimeout(within)
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True
    except (socket.timeout, OSError):
        return False


def test_held_connections_do_not_starve_the_probe(scaler):
    held = hold(scaler.http_port, 64)
    try:
        # Every probe answers, within a second, for longer than the head deadline.
        started = time.monotonic()
        answered = 0
        while time.monotonic() - started < 8:
            assert http_get(f"http://127.0.0.1:{scaler.http_port}/healthz", timeout=1) == "ok\n"
            answered += 1
            time.sleep(0.25)
        assert answered >= 20
        # And the held connections are closed by the scaler: over the per-address cap at once,
        # the rest when their request head has not come within its deadline.
        assert all(closed_by_server(s, within=10) for s in held)
    finally:
        for s in held:
            s.close()


def test_a_slow_request_head_is_cut_off(scaler):
    s = socket.create_connection(("127.0.0.1", scaler.http_port))
    try:
        # One byte a second: the head never completes within its deadline (5 s).
        started = time.monotonic()
        closed = False
        for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\n":
            try:
                s.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if closed_by_server(s, within=1):
                closed = True
                break
        assert closed, "a request head trickling in was served for the whole of it"
        assert time.monotonic() - started < 9
    finally:
        s.close()


def cpu_seconds(pid):
    """User and system CPU time of process `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_metrics_hammered_costs_little(scaler):
    url = f"http://127.0.0.1:{scaler.http_port}/metrics"
    body = http_get(url, accept="application/openmetrics-text")
    assert "leadtime_workloads" in body
    before = cpu_seconds(scaler.process.pid)
    requests = [0]
    lock = threading.Lock()

    def client(address):
        # Each client from its own pod address, on one connection after another.
        for _ in range(50):
            s = socket.socket()
            s.bind((address, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", scaler.http_port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            response = b""
            while chunk := s.recv(65536):
                response += chunk
            s.close()
            if response.startswith(b"HTTP/1.1 200"):
                with lock:
                    requests[0] += 1

    # Two clients per address, within the per-address cap.
    threads = [threading.Thread(target=client, args=(PODS[i % len(PODS)],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = cpu_seconds(scaler.process.pid) - before
    assert requests[0] == 400
    # Rendered at most once a second: a request costs the scaler a copy of the text and HTTP, far
    # under a millisecond of CPU (rendering each anew cost several times that).
    assert spent / requests[0] < 0.0005, f"{spent:.2f} s of CPU for {requests[0]} scrapes"


def test_sighup_is_logged_and_ignored(scaler):
    scaler.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "SIGHUP ignored" not in scaler.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "SIGHUP ignored" in scaler.log_text()
    assert scaler.process.poll() is None
    assert http_get(f"http://127.0.0.1:{scaler.http_port}/healthz", timeout=2) == "ok\n"
