"""Policy modules crafted to blow up the compiler, against the real `leadtime serve` (#30, 5).

The module here is 455 KB of `.wat` text, inside every size limit, and takes the compiler seconds
and ~600 MB. Before, its compile ran on a thread of the scaler: past the deadline it went on,
holding the memory, and a 1.9 GB one ran the scaler's pod towards its limit. Now every compile
runs in a worker process (`leadtime compile-worker`) with its memory capped by the kernel and
killed at `limits.compileTime`: the scaler's own memory does not move.
"""

import os
from pathlib import Path

import grpc
import pytest

from conftest import REPO
from test_hostile import desired, meta, refused


def bomb(locals_=5000, branches=3000):
    """One function: a loop of `branches` conditional writes over `locals_` i64 locals, all read
    at the end, so every local is live across every block (the register allocator's worst
    case)."""
    ifs = " ".join(
        f"(if (i32.wrap_i64 (local.get {i % locals_})) (then (local.set {i * 7 % locals_} "
        f"(i64.add (local.get {i * 13 % locals_}) (i64.const {i})))))"
        for i in range(branches)
    )
    total = " ".join(["(local.get 0)"] + [f"(local.get {i}) i64.add" for i in range(1, locals_)])
    return (
        '(module (memory (export "memory") 1) (func (export "f") (param i64) (result i64) '
        f"(local {' '.join(['i64'] * locals_)}) "
        f"(loop $l {ifs} (br_if $l (i32.wrap_i64 (local.get 1)))) {total}))"
    )


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bombs")
    (directory / "bomb.wat").write_text(bomb())
    source = REPO / "policies" / "examples" / "wat" / "target_tracking.wat"
    (directory / "mine.wat").write_text(source.read_text())
    return directory


def status(pid, field):
    """A field of /proc/PID/status in kB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def children(pid):
    """The processes `pid` started that are still there."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += (task / "children").read_text().split()
    return found


def warnings_for(scaler, policy):
    import json

    lines = [json.loads(line) for line in scaler.log_text().splitlines() if line.strip()]
    return [
        entry
        for entry in lines
        if entry.get("fields", entry).get("policy") == policy
        or policy in json.dumps(entry)
    ]


@pytest.mark.parametrize(
    "limits,cap",
    [
        # Capped in memory: the worker's allocation fails, far below what the module needs.
        ("compileMemoryBytes: 134217728\n  compileTime: 60s", "limits.compileMemoryBytes"),
        # Capped in time: memory enough, but killed at the deadline, long before it is done.
        ("compileMemoryBytes: 4294967296\n  compileTime: 1s", "limits.compileTime"),
    ],
)
def test_a_compile_bomb_is_stopped_and_costs_the_scaler_nothing(start_scaler, bombs, limits, cap):
    scaler = start_scaler(f"policyDir: {bombs}\nlimits:\n  {limits}\n")
    keda = scaler.stub("keda")
    pid = scaler.process.pid
    assert desired(scaler, keda, "good", meta(policy="mine.wat")) == 3
    before = status(pid, "VmHWM")

    message = refused(
        lambda: desired(scaler, keda, "bomb", meta(policy="bomb.wat")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "`bomb.wat` does not load (invalid-module)" in message, message
    # The worker is gone (killed, or ended by its failed allocation), not compiling on.
    assert children(pid) == [], children(pid)
    # The compile's memory was the worker's: the scaler's peak is where it was.
    grown = status(pid, "VmHWM") - before
    assert grown < 64 * 1024, f"the scaler's peak memory grew by {grown} kB"
    # The operator's log names the cap that stopped it.
    logged = [e for e in warnings_for(scaler, "bomb.wat") if "does not load" in str(e)]
    assert logged and cap in str(logged[0]), logged

    # Asked again at once: answered from memory, not compiled again.
    refused(
        lambda: desired(scaler, keda, "bomb-2", meta(policy="bomb.wat")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert children(pid) == []
    assert "failed" in str(warnings_for(scaler, "bomb.wat")[-1])
    # Other policies keep loading and answering.
    assert desired(scaler, keda, "good-2", meta(policy="mine.wat", targetPerPod="50")) == 5
    assert os.path.exists(f"/proc/{pid}")
