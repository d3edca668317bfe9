"""`leadtime.Policy`: decisions in the JSON form of docs/ABI.md, equal to `leadtime decide`'s;
the hostile modules of tests/adversarial each end in their typed error kind, as a Python
exception, and the interpreter carries on; policies run with the GIL released."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import leadtime

ADVERSARIAL = sorted((Path(__file__).resolve().parents[2] / "tests" / "adversarial").glob("*.wat"))


def corpus_request() -> Dict[str, Any]:
    """The request the Rust corpus test sends every hostile module (tests/corpus.rs)."""
    return {
        "abi_version": 1,
        "now": 1_700_000_000_000,
        "workload": {"namespace": "default", "name": "web"},
        "replicas": {"current": 2, "ready": 2, "min": 1, "max": 10},
        "metrics": [
            {"name": "load", "target_per_pod": 10.0, "interval_seconds": 60.0, "end": 1_700_000_000_000, "values": [10.0, 20.0, 30.0]}
        ],
        "ready_times": [],
        "params": {},
    }


def good_still_answers(policy: leadtime.Policy) -> None:
    request = corpus_request()
    request["metrics"][0]["values"] = [95.0]
    request["replicas"] = {"current": 2, "ready": 2, "min": 1, "max": 20}
    assert policy.decide(request)["replicas"] == 10


def test_the_corpus_is_there() -> None:
    assert len(ADVERSARIAL) >= 25


@pytest.mark.parametrize("path", ADVERSARIAL, ids=[p.stem for p in ADVERSARIAL])
def test_each_hostile_module_ends_in_its_kind(path: Path) -> None:
    expect = path.read_text(encoding="utf-8").splitlines()[0].removeprefix(";; expect: ").strip()
    good = leadtime.Policy("target-tracking")
    try:
        answer = leadtime.Policy(path).decide(corpus_request())
        got = f"ok {answer['replicas']}"
    except leadtime.PolicyError as e:
        got = e.kind
        assert e.kind in leadtime.ERROR_KINDS and str(e).startswith(f"{e.kind}: ")
        # It travels back from a worker process intact.
        again = pickle.loads(pickle.dumps(e))
        assert (type(again), again.kind, again.message) == (type(e), e.kind, e.message)
    assert got == expect
    good_still_answers(good)


def test_the_same_modules_from_bytes_give_the_same_kinds() -> None:
    kinds = {}
    for path in ADVERSARIAL:
        try:
            leadtime.Policy(path.read_bytes(), name=path.stem).decide(corpus_request())
            kinds[path.stem] = "ok"
        except leadtime.PolicyError as e:
            kinds[path.stem] = e.kind
    expected = {p.stem: p.read_text().splitlines()[0].removeprefix(";; expect: ").split()[0] for p in ADVERSARIAL}
    assert kinds == expected


def test_limits_bound_the_call() -> None:
    with pytest.raises(leadtime.PolicyError) as caught:
        leadtime.Policy("predictive", limits={"fuel_per_call": 1000}).decide(corpus_request())
    assert caught.value.kind == "out-of-fuel"
    with pytest.raises(leadtime.BadRequestError, match="no limit `fuel`"):
        leadtime.Policy("hpa", limits={"fuel": 1})


def test_decide_equals_the_cli(root: Path, cli: Path) -> None:
    request_path = root / "examples" / "request.json"
    done = subprocess.run([str(cli), "decide", "--policy", "predictive", "--request", str(request_path), "--param", "quantile=0.9"], capture_output=True, text=True, check=True)
    expected = json.loads(done.stdout)
    request = json.loads(request_path.read_text())
    answer = leadtime.Policy("predictive", params={"quantile": 0.9}).decide(request)
    assert {k: answer[k] for k in expected} == expected


def test_state_rides_from_call_to_call_and_forks_start_empty() -> None:
    policy = leadtime.Policy("predictive")
    request = corpus_request()
    request["metrics"][0]["values"] = np.linspace(10.0, 50.0, 120)  # arrays are fine
    request["metrics"][0]["values"][5] = np.nan  # a missing point
    first = policy.decide(request)
    assert isinstance(first["replicas"], int) and first["reason"]
    assert first["fuel"] > 0 and policy.last_fuel == first["fuel"]
    fork = policy.fork()
    assert fork.name == policy.name == "predictive"
    if first["state"] is not None:
        assert isinstance(first["state"], bytes)
        # Sent back explicitly, the state is the same as kept by the handle.
        explicit = dict(request, state=first["state"])
        assert leadtime.Policy("predictive").decide(explicit)["replicas"] == policy.decide(request)["replicas"]


def test_info_describes_the_module(root: Path) -> None:
    info = leadtime.Policy("hpa", params={"tolerance": 0.2}).info
    assert info["builtin"] and info["name"] == "hpa" and info["summary"]
    assert info["params"] == {"tolerance": 0.2}
    assert any(e.startswith("leadtime_decide") for e in info["exports"])
    wat = leadtime.Policy(root / "tests" / "adversarial" / "ok_fixed.wat").info
    assert not wat["builtin"] and wat["summary"] is None
    names = [name for name, _ in leadtime.builtins()]
    assert names[0] == "predictive" and "hpa" in names


def test_bad_requests_are_bad_requests() -> None:
    policy = leadtime.Policy("hpa")
    request = corpus_request()
    request["replicas"]["min"] = 20  # above max
    with pytest.raises(leadtime.BadRequestError) as caught:
        policy.decide(request)
    assert caught.value.kind == "bad-request"
    with pytest.raises(leadtime.BadRequestError, match="request"):
        policy.decide({"abi_version": 1})
    with pytest.raises(leadtime.BadRequestError):
        leadtime.Policy(42)  # type: ignore[arg-type]
    with pytest.raises(leadtime.PolicyError) as unknown:
        leadtime.Policy("no-such-policy")
    assert unknown.value.kind == "unknown-policy"


def _longest_pause(work, *args: Any) -> tuple:
    """Runs `work` on a thread while this one counts; the longest this thread went without
    running, and how long `work` took."""
    done = threading.Event()
    took: List[float] = []

    def run() -> None:
        start = time.perf_counter()
        work(*args)
        took.append(time.perf_counter() - start)
        done.set()

    thread = threading.Thread(target=run)
    last = time.perf_counter()
    longest = 0.0
    thread.start()
    while not done.is_set():
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now
    thread.join()
    return longest, took[0]


def test_the_gil_is_released_while_policies_run(root: Path) -> None:
    trace = leadtime.load_trace(root / "testdata" / "traces" / "art_daily_small_noise.csv")
    longest, took = _longest_pause(lambda: leadtime.backtest(trace, ["predictive", "hpa"], ready_time="5m", peak_pods=20))
    assert took > 0.2, "the backtest is too short to tell"
    # Held for the whole call, this thread would have paused as long as the call took.
    assert longest < took / 4, (longest, took)


# A trap after other code has taken the fault signals (SIGILL, SIGFPE, SIGSEGV): Python's own
# faulthandler, enabled after the first policy call, as a notebook or a test runner may do.
FAULTHANDLER_AFTER = """
import faulthandler, json, sys
import leadtime
request = json.loads(sys.argv[1])
kinds = []
for name in ("divide_by_zero", "unreachable", "load_out_of_bounds", "recursion"):
    policy = leadtime.Policy(f"tests/adversarial/{name}.wat")
    for _ in range(2):
        try:
            policy.decide(request)
        except leadtime.PolicyError as e:
            kinds.append(e.kind)
        faulthandler.enable()
print(json.dumps(kinds))
"""


def test_traps_stay_errors_when_other_code_takes_the_fault_signals(root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FAULTHANDLER_AFTER, json.dumps(corpus_request())],
        cwd=root, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"the interpreter ended with {done.returncode}: {done.stderr[-2000:]}"
    assert json.loads(done.stdout) == ["trap"] * 6 + ["stack-overflow"] * 2


def test_signal_traps_are_faster_opt_in_and_decide_the_same(root: Path, tmp_path: Path) -> None:
    # With LEADTIME_SIGNAL_TRAPS=1 the engine uses signals: the same trap then ends the
    # interpreter, which is why it is not the default.
    env = {**os.environ, "LEADTIME_SIGNAL_TRAPS": "1", "LEADTIME_NO_CACHE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", FAULTHANDLER_AFTER, json.dumps(corpus_request())],
        cwd=root, capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode < 0, f"the trap did not end the interpreter: {done.stdout} {done.stderr[-1000:]}"
    # ...and its decisions are the same.
    script = (
        "import json, sys, leadtime\n"
        "f = leadtime.backtest(sys.argv[1], ['predictive', 'hpa'], ready_time='5m', peak_pods=20, lookback='2d', series=False)\n"
        "print(json.dumps([(r['policy'], r['pod_hours'], r['under_provisioned_pct']) for r in f.cli_json()['results']]))\n"
    )
    trace = str(root / "testdata" / "traces" / "art_daily_small_noise.csv")
    outs = []
    for signals in ("0", "1"):
        run = subprocess.run([sys.executable, "-c", script, trace], cwd=root, capture_output=True, text=True, timeout=600, env={**env, "LEADTIME_SIGNAL_TRAPS": signals})
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(json.loads(run.stdout))
    assert outs[0] == outs[1] and len(outs[0]) == 3


def test_the_version_is_the_command_lines(cli: Path) -> None:
    # `leadtime --version` prints `leadtime X.Y.Z`: one workspace, one version.
    printed = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert printed.split() == ["leadtime", leadtime.__version__]
    assert "__version__" in leadtime.__all__


def test_load_errors_name_the_policy(tmp_path: Path) -> None:
    bad = tmp_path / "mine.wat"
    bad.write_text("(module\n  (func (export \"f\") (result i32)\n    i32.bogus))\n")
    with pytest.raises(leadtime.PolicyError) as by_path:
        leadtime.Policy(str(bad))
    assert str(bad) in by_path.value.message and "line 3, column 5" in by_path.value.message
    assert "\\n" not in by_path.value.message
    with pytest.raises(leadtime.PolicyError, match="^invalid-module: team-a/scaler: "):
        leadtime.Policy(b"\0asm\x01\0\0\0garbage", name="team-a/scaler")
    with pytest.raises(leadtime.PolicyError, match="no-such-policy"):
        leadtime.Policy("no-such-policy")
