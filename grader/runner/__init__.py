"""Run untrusted notebook code in an isolated child; the trusted parent only receives numbers."""

from .pool import CallResult, CellResult, ChildPool, Output, PoolClosed, Problem, SandboxDied, Session
from .protocol import ProtocolError, Wire
from .sandbox import IsolationError, Limits, available_isolation

__all__ = [
    "CallResult", "CellResult", "ChildPool", "IsolationError", "Limits", "Output", "PoolClosed", "Problem",
    "ProtocolError", "SandboxDied", "Session", "Wire", "available_isolation",
]
