"""leadtime from Python: scaling policies compiled to WebAssembly, run sandboxed, and backtests of
them on demand traces, from pandas and NumPy (docs/python.md).

>>> import leadtime
>>> rows = leadtime.backtest("nyc_taxi.csv", ["predictive", "hpa"], ready_time="5m", peak_pods=20)
"""

# No `from __future__ import annotations` here: it would bind `annotations` in the package's
# namespace (the annotations below are valid at run time from Python 3.9).
from . import _native, fleet
from .backtest import BacktestFrame, backtest, load_trace
from .errors import BadRequestError, LeadtimeError, PolicyError, PrometheusError
from .policy import Policy
from .prometheus import from_prometheus, ready_times_from_prometheus
from .schedule import Schedule

#: The package's version: the engine's and the command line's, built from the same workspace.
__version__: str = _native.__version__

#: Every error kind the engine reports (``LeadtimeError.kind``), in its stable order.
ERROR_KINDS: tuple[str, ...] = tuple(_native.ERROR_KINDS)

#: A checked demand trace on its grid (``load_trace`` makes one).
Trace = _native.Trace


def builtins() -> list[tuple[str, str]]:
    """The built-in policies as ``(name, summary)``, the default first."""
    return list(_native.builtins())


__all__ = [
    "__version__",
    "BacktestFrame",
    "BadRequestError",
    "ERROR_KINDS",
    "LeadtimeError",
    "Policy",
    "PolicyError",
    "PrometheusError",
    "Schedule",
    "Trace",
    "backtest",
    "builtins",
    "from_prometheus",
    "ready_times_from_prometheus",
    "fleet",
    "load_trace",
]
