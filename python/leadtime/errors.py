"""The exceptions of the leadtime package, each carrying the engine's error kind."""

from __future__ import annotations


class LeadtimeError(Exception):
    """Anything leadtime refuses or a policy fails at; ``kind`` is the engine's error kind."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __reduce__(self):  # type: ignore[override]
        # Errors raised on a Dask or process worker come back to the caller by pickle.
        return (type(self), (self.message, self.kind))


class PolicyError(LeadtimeError):
    """A policy could not be loaded or failed a call (kinds such as ``out-of-fuel``, ``trap``,
    ``bad-response``, ``forbidden-import``, ``unknown-policy``; ``leadtime.ERROR_KINDS`` lists them)."""


class BadRequestError(LeadtimeError, ValueError):
    """A request, trace or setting that is not valid (kind ``bad-request``)."""


class PrometheusError(LeadtimeError, OSError):
    """Prometheus could not give a trace: ``kind`` is the client's (``unreachable``,
    ``timeout``, ``api`` (e.g. HTTP 401: the credentials), ``several-series``, ``no-data``,
    ``bad-query``, ``too-large``, ``credentials``)."""
