"""The package's types, checked by mypy against the native module's stub (_native.pyi): a
caller's type checker sees what the functions take and give, not `Any`."""

from __future__ import annotations

from pathlib import Path

import mypy.api

import leadtime

PACKAGE = Path(__file__).resolve().parents[1] / "leadtime"


def test_the_package_type_checks_against_its_stub(tmp_path: Path) -> None:
    # One mypy run (numpy's types take it most of its time): the package, and beside it a
    # caller's two calls the stub does not allow, so that the check is seen to be real.
    wrong = tmp_path / "wrong.py"
    wrong.write_text("import leadtime._native as n\nn.parse_seconds(5)\nn.Trace.from_grid('x', 0, 1)\n")
    out, err, _ = mypy.api.run([str(PACKAGE), str(wrong), "--ignore-missing-imports", "--no-incremental"])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert errors and all(line.startswith(str(wrong)) for line in errors), out + err
    assert len(errors) == 2, out


def test_the_namespace_holds_only_what_it_exports() -> None:
    public = {name for name in dir(leadtime) if not name.startswith("_")}
    # The submodules, and what __all__ names; no typing helpers leaking.
    assert public - set(leadtime.__all__) <= {"backtest", "errors", "fleet", "policy", "prometheus", "schedule"}, public - set(leadtime.__all__)
