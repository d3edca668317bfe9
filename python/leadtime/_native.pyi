# Types of the native module (python/src, PyO3), for type checkers: mypy sees these instead of
# `Any`. python/tests/test_types.py checks the package against them with mypy.
from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
ERROR_KINDS: List[str]

class Trace:
    @staticmethod
    def from_csv(
        path: Union[str, PathLike[str]],
        time_column: Optional[str] = None,
        value_column: Optional[str] = None,
        resample: Optional[str] = None,
    ) -> Trace: ...
    @staticmethod
    def from_points(
        name: str,
        times_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        resample: Optional[str] = None,
    ) -> Trace: ...
    @staticmethod
    def from_grid(name: str, start_ms: int, step_ms: int, values: npt.NDArray[np.float64]) -> Trace: ...
    @property
    def name(self) -> str: ...
    @property
    def start_ms(self) -> int: ...
    @property
    def step_ms(self) -> int: ...
    @property
    def gaps(self) -> int: ...
    @property
    def values(self) -> npt.NDArray[np.float64]: ...
    def peak(self) -> float: ...
    def capacity_for_peak(self, pods: int) -> float: ...
    def capacity_for_quantile(self, q: float, pods: int) -> float: ...
    def __len__(self) -> int: ...

class Policy:
    def __init__(
        self,
        source: Union[str, bytes],
        params: Optional[Dict[str, Union[bool, int, float, str]]] = None,
        limits: Optional[Dict[str, Union[int, float, bool]]] = None,
        name: Optional[str] = None,
    ) -> None: ...
    def decide(self, request: str) -> str: ...
    def fork(self) -> Policy: ...
    def reset_state(self) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def info(self) -> Dict[str, Any]: ...
    @property
    def last_fuel(self) -> int: ...

class Backtest:
    def json(self) -> str: ...
    def report_html(self) -> str: ...
    def series(
        self,
    ) -> List[
        Tuple[
            str,
            npt.NDArray[np.int64],
            npt.NDArray[np.float64],
            npt.NDArray[np.float64],
            npt.NDArray[np.uint32],
        ]
    ]: ...
    @property
    def steps(self) -> int: ...
    @property
    def capacity_per_pod(self) -> float: ...

def backtest(
    trace: Trace,
    jobs: Sequence[Tuple[str, str, Optional[Mapping[str, Any]]]],
    *,
    capacity_per_pod: float,
    ready: Tuple[str, Any],
    seed: int = 1,
    interval: Optional[Union[str, float]] = None,
    lookback: Optional[Union[str, float]] = None,
    target_utilization: float = 1.0,
    warmup: Optional[Union[str, float]] = None,
    min_replicas: int = 1,
    max_replicas: Optional[int] = None,
    behavior: Optional[str] = None,
    schedule: Optional[str] = None,
    sweep: bool = False,
    record_series: bool = True,
    threads: Optional[int] = None,
) -> Backtest: ...
def check_schedule(kind: str, value: str) -> str: ...
def builtins() -> List[Tuple[str, str]]: ...
def parse_seconds(text: str) -> float: ...
def prometheus_series(
    url: str, query: str, start: int, end: int, step: int, connection: Dict[str, Any], timeout: float = 60.0
) -> Tuple[List[int], List[float]]: ...
def prometheus_ready_times(
    url: str, query: str, end: int, range: int, connection: Dict[str, Any], timeout: float = 60.0
) -> List[float]: ...
