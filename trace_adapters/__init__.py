"""Readers for real agent-trace formats, each turning native documents into ParsedTraces."""

from tracewatch.trace_adapters.base import Adapter, AdapterError, ParsedTrace
from tracewatch.trace_adapters.registry import (
    DetectionError,
    all_adapters,
    detect,
    get,
    names,
    register,
)

__all__ = [
    "Adapter",
    "AdapterError",
    "DetectionError",
    "ParsedTrace",
    "all_adapters",
    "detect",
    "get",
    "names",
    "register",
]
