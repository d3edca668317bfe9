"""What the hostile-client suite starts, for real, on 127.0.0.1 with free ports.

- an exporter (http.server) serving a test load in namespace `test` and another tenant's secret
  (namespace `bank`), as serve/tests/harness/mod.rs does;
- a real Prometheus (the Debian package, `make setup`) scraping it every second;
- certificates made with the openssl CLI as serve/README.md says ("Who may call: mutual TLS");
- `leadtime serve`, the real binary, with mutual TLS and two allowed clients;
- the gRPC stubs, generated from serve/proto/externalscaler.proto into a temporary directory.
"""

import http.server
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest

REPO = Path(__file__).resolve().parents[3]
LOAD = 250
SECRET_VALUE = "1234567.891"

EXPORTED = (
    "# TYPE test_load gauge\n"
    f'test_load{{namespace="test"}} {LOAD}\n'
    "# TYPE test_ready_seconds gauge\n"
    'test_ready_seconds{namespace="test",pod="a"} 30\n'
    'test_ready_seconds{namespace="test",pod="b"} 50\n'
    "# TYPE secret_revenue gauge\n"
    f'secret_revenue{{namespace="bank",account="acme"}} {SECRET_VALUE}\n'
)

# The clients on the scaler's allow-list (matched by common name).
KEDA = "keda-operator"
SECOND = "keda-operator-2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


@pytest.fixture(scope="session")
def binary():
    """The `leadtime` binary cargo built: in $CARGO_TARGET_DIR, else the repo's target/."""
    target = os.environ.get("CARGO_TARGET_DIR") or str(REPO / "target")
    path = Path(target) / "debug" / "leadtime"
    if not path.is_file():
        pytest.exit(f"{path} is missing: build it first (cargo build --workspace)", returncode=3)
    return path


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The messages and stubs of externalscaler.proto, generated now with grpc_tools.protoc."""
    out = tmp_path_factory.mktemp("stubs")
    proto = REPO / "serve" / "proto"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            str(proto / "externalscaler.proto"),
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    try:
        messages = importlib.import_module("externalscaler_pb2")
        services = importlib.import_module("externalscaler_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return messages, services


@pytest.fixture(scope="session")
def exporter():
    """A /metrics endpoint with the test load and the bank's secret."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = EXPORTED.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def prometheus_value(url, query):
    """The values of `query` now, as strings; [] on any error."""
    try:
        text = http_get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    except OSError:
        return []
    data = json.loads(text)
    return [s["value"][1] for s in data.get("data", {}).get("result", [])]


@pytest.fixture(scope="session")
def prometheus(exporter, tmp_path_factory):
    """A real Prometheus scraping the exporter every second; its URL once both series are in."""
    if shutil.which("prometheus") is None:
        pytest.exit("`prometheus` is not on PATH: run `make setup`", returncode=3)
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: test\n"
        f"    static_configs:\n      - targets: ['{exporter}']\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not (
            prometheus_value(url, "test_load") == [str(LOAD)]
            and prometheus_value(url, "secret_revenue") == [SECRET_VALUE]
        ):
            assert process.poll() is None, "prometheus exited"
            assert time.monotonic() < deadline, "no test_load and secret_revenue within 30 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Pki:
    """The test certificates: files in `directory`, and each one's PEM bytes."""

    def __init__(self, directory):
        self.directory = directory

    def path(self, name):
        return self.directory / name

    def pem(self, name):
        return self.path(name).read_bytes()

    def credentials(self, client=None, ca="ca"):
        """TLS channel credentials trusting `ca`, presenting the client certificate `client`."""
        key = chain = None
        if client is not None:
            key, chain = self.pem(f"{client}.key"), self.pem(f"{client}.crt")
        return grpc.ssl_channel_credentials(
            root_certificates=self.pem(f"{ca}.crt"), private_key=key, certificate_chain=chain
        )


def openssl(directory, command):
    """Runs `openssl <command>` (words without spaces) in `directory`."""
    result = subprocess.run(
        ["openssl", *command.split()], cwd=directory, capture_output=True, text=True
    )
    assert result.returncode == 0, f"openssl {command}: {result.stderr}"


# serve/README.md's commands ("Who may call: mutual TLS"), valid for a day.
EC = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"


def make_ca(directory, name, cn):
    openssl(directory, f"req -x509 {EC} -days 1 -subj /CN={cn} -keyout {name}.key -out {name}.crt")


def issue(directory, ca, name, cn, *extensions):
    """A key and a certificate signed by `ca`, with the CSR's `extensions` copied in."""
    addext = " ".join(f"-addext {ext}" for ext in extensions)
    openssl(directory, f"req {EC} -subj /CN={cn} {addext} -keyout {name}.key -out {name}.csr")
    openssl(
        directory,
        f"x509 -req -in {name}.csr -CA {ca}.crt -CAkey {ca}.key -days 1 -copy_extensions copy "
        f"-out {name}.crt",
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """serve/README.md's certificates: a CA, the server's (for localhost), KEDA's client
    certificate and a second allowed one, one the CA signed for a name not allowed, and one from
    another CA that claims KEDA's name."""
    if shutil.which("openssl") is None:
        pytest.exit("`openssl` is not on PATH: run `make setup`", returncode=3)
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca", "leadtime-ca")
    issue(d, "ca", "server", "leadtime-scaler", "subjectAltName=DNS:localhost")
    issue(d, "ca", "keda", KEDA, "extendedKeyUsage=clientAuth")
    issue(d, "ca", "second", SECOND, "extendedKeyUsage=clientAuth")
    issue(
        d,
        "ca",
        "stranger",
        "evil",
        "extendedKeyUsage=clientAuth",
        "subjectAltName=DNS:evil.tenant.svc",
    )
    # KEDA's name as its common name, but a subject alternative name of its own: RFC 6125 says
    # the SAN replaces the CN, so this certificate is not KEDA's.
    issue(
        d,
        "ca",
        "san-not-cn",
        KEDA,
        "extendedKeyUsage=clientAuth",
        "subjectAltName=DNS:unlisted.tenant.svc",
    )
    make_ca(d, "other-ca", "leadtime-ca")
    issue(d, "other-ca", "forged", KEDA, "extendedKeyUsage=clientAuth")
    return Pki(d)


class Scaler:
    """A running `leadtime serve` and channels to it."""

    def __init__(self, process, grpc_port, http_port, log, pki, pb):
        self.process = process
        self.grpc_port = grpc_port
        self.http_port = http_port
        self.log = log
        self.pki = pki
        self.pb, self.services = pb
        # Each channel is a connection, and the scaler takes at most `limits.connectionsPerIp`
        # from 127.0.0.1: one channel per client is kept, the others close after their test.
        self.kept = {}
        self.transient = []

    @property
    def target(self):
        return f"127.0.0.1:{self.grpc_port}"

    def channel(self, client="keda", ca="ca"):
        """A new TLS channel presenting `client`'s certificate (None: none), closed after the
        test."""
        channel = grpc.secure_channel(
            self.target,
            self.pki.credentials(client, ca),
            options=[
                ("grpc.ssl_target_name_override", "localhost"),
                # A connection of its own: channels share none.
                ("grpc.use_local_subchannel_pool", 1),
            ],
        )
        self.transient.append(channel)
        return channel

    def stub(self, client="keda"):
        """A stub on the one channel kept for `client`."""
        if client not in self.kept:
            self.kept[client] = self.channel(client)
            self.transient.remove(self.kept[client])
        return self.services.ExternalScalerStub(self.kept[client])

    def new_stub(self, client="keda", ca="ca"):
        """A stub on a new channel (connection), closed after the test."""
        return self.services.ExternalScalerStub(self.channel(client, ca))

    def plain_stub(self):
        channel = grpc.insecure_channel(
            self.target, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        self.transient.append(channel)
        return self.services.ExternalScalerStub(channel)

    def close_transient(self):
        for channel in self.transient:
            channel.close()
        self.transient.clear()

    def metrics(self):
        # A rendering is reused for 100 ms (serve/src/http.rs): wait that out, so that what the
        # test did so far shows.
        time.sleep(0.11)
        # As Prometheus asks for them: OpenMetrics.
        return http_get(
            f"http://127.0.0.1:{self.http_port}/metrics", accept="application/openmetrics-text"
        )

    def log_text(self):
        return self.log.read_text(errors="replace")

    def stop(self):
        self.close_transient()
        for channel in self.kept.values():
            channel.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def start_scaler(binary, prometheus, pki, pb, tmp_path_factory):
    """Starts `leadtime serve` with mutual TLS (KEDA and a second client allowed) and a config
    file of `prometheus.url` plus `extra` YAML; each one is stopped at the end of the session."""
    started = []

    def start(extra=""):
        directory = tmp_path_factory.mktemp("scaler")
        config = directory / "config.yaml"
        config.write_text(
            f"prometheus:\n  url: {prometheus}\n  timeout: 2s\n  cacheTtl: 100ms\n"
            "streamInterval: 60s\nidleAfter: 15m\nlogFormat: json\n" + extra
        )
        log = directory / "scaler.log"
        for _attempt in range(3):
            grpc_port, http_port = free_port(), free_port()
            flags = [
                ("--listen", f"127.0.0.1:{grpc_port}"),
                ("--http-listen", f"127.0.0.1:{http_port}"),
                ("--config", config),
                ("--tls-cert", pki.path("server.crt")),
                ("--tls-key", pki.path("server.key")),
                ("--client-ca", pki.path("ca.crt")),
                ("--allow-client", KEDA),
                ("--allow-client", SECOND),
            ]
            with log.open("w") as out:
                process = subprocess.Popen(
                    [binary, "serve", *(str(word) for flag in flags for word in flag)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "LEADTIME_LOG": "warn"},
                )
            scaler = Scaler(process, grpc_port, http_port, log, pki, pb)
            started.append(scaler)
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    if http_get(f"http://127.0.0.1:{http_port}/healthz", timeout=1) == "ok\n":
                        return scaler
                except OSError:
                    time.sleep(0.1)
            scaler.stop()
            # A port taken between picking and binding: try others.
            if "binding" not in scaler.log_text():
                break
        pytest.fail(f"leadtime serve did not become healthy:\n{scaler.log_text()}")

    start.started = started
    yield start
    for scaler in started:
        scaler.stop()
    # What a log shipper would read: every line of every scaler's log is one JSON object, however
    # hostile the names and policies the suite sent.
    for scaler in started:
        for number, line in enumerate(scaler.log_text().splitlines(), 1):
            try:
                entry = json.loads(line)
            except ValueError as e:
                pytest.fail(f"{scaler.log}:{number}: not JSON ({e}): {line!r}")
            assert {"timestamp", "level", "target", "message"} <= entry.keys(), line


@pytest.fixture(autouse=True)
def close_channels(start_scaler):
    """Closes the channels a test opened, so that connections do not pile up across tests."""
    yield
    for scaler in start_scaler.started:
        scaler.close_transient()


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory):
    """The operator's policyDir: a good policy, a file that is no policy but a secret, a link
    out; and beside it, outside, a good policy that must not load from there."""
    root = tmp_path_factory.mktemp("policies")
    inside = root / "policies"
    inside.mkdir()
    source = REPO / "policies" / "examples" / "wat" / "target_tracking.wat"
    shutil.copy(source, inside / "mine.wat")
    (inside / "secret.wat").write_text("top secret: hunter2\n")
    shutil.copy(source, root / "outside.wat")
    (inside / "link.wat").symlink_to(root / "outside.wat")
    return inside


@pytest.fixture(scope="session")
def scaler(start_scaler, policy_dir):
    """The scaler most cases share: few StreamIsActive streams, policy files from policy_dir."""
    return start_scaler(
        "limits:\n  workloads: 100\n  workloadsPerNamespace: 60\n  streams: 4\n"
        f"policyDir: {policy_dir}\n"
    )
