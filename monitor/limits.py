"""Limits on what one record may be: set by design, so that hostile or broken input ends as a
quarantined record with a reason, never as a crash, a frozen worker or gigabytes of memory.

Every limit is checked before the work it protects (a nesting depth before a recursive walk,
a size before a parse, a time range before date arithmetic), and every one can be raised by
the operator who knows their traffic needs it (`TRACEWATCH_LIMITS` or the CLI options).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

MIB = 1 << 20


class InputLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_depth: int = Field(
        100, ge=8, le=200, description="nesting of JSON objects and arrays in one record"
    )
    max_record_bytes: int = Field(
        64 * MIB, ge=1024, description="one JSONL line, one posted record, one stdin line"
    )
    max_document_bytes: int = Field(
        256 * MIB, ge=1024, description="one whole-document file (.json, .traj) or archive member"
    )
    max_archive_bytes: int = Field(
        2048 * MIB, ge=1024, description="all members of one .eval archive, inflated"
    )
    max_stream_bytes: int = Field(
        64 * 1024 * MIB, ge=1024, description="one .jsonl.gz file, inflated"
    )
    max_members: int = Field(100_000, ge=1, description="members of one .eval archive")
    earliest: datetime = Field(
        datetime(1970, 1, 1, tzinfo=UTC), description="no interaction is older than this"
    )
    future_slack_s: int = Field(
        86400, ge=0, description="how far past now a time may be (clocks are skewed)"
    )

    def latest(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.future_slack_s)


@cache
def default_limits() -> InputLimits:
    """The limits in force: defaults, overridden by `TRACEWATCH_LIMITS` (JSON object)."""
    raw = os.environ.get("TRACEWATCH_LIMITS")
    return InputLimits.model_validate_json(raw) if raw else InputLimits()


class LimitExceeded(ValueError):
    """A record is past one of the limits; `reason` is its quarantine reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# A JSON string, whole: a quote, then runs of ordinary characters or single escapes. The
# quantifiers are possessive (nothing is given back), so matching is linear in the input.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_OPEN = np.frombuffer(b"{[", dtype=np.uint8)
_CLOSE = np.frombuffer(b"}]", dtype=np.uint8)


def json_depth(raw: bytes) -> int:
    """The deepest nesting of objects and arrays in raw JSON, without parsing it.

    Strings are blanked first (brackets inside them do not count); the rest is a running sum
    of opens minus closes, done by numpy in C, so checking a record costs about a copy of it.
    """
    if raw.count(b"{") + raw.count(b"[") == 0:
        return 0
    if b'"' in raw:
        raw = _JSON_STRING.sub(b'""', raw)
    buf = np.frombuffer(raw, dtype=np.uint8)
    step = np.isin(buf, _OPEN).astype(np.int32) - np.isin(buf, _CLOSE).astype(np.int32)
    return int(np.cumsum(step).max(initial=0))


def check_depth(raw: bytes, limits: InputLimits) -> None:
    # A record with fewer brackets than the limit cannot be nested past it.
    if raw.count(b"{") + raw.count(b"[") <= limits.max_depth:
        return
    depth = json_depth(raw)
    if depth > limits.max_depth:
        raise LimitExceeded(
            "too_deep",
            f"nested {depth} levels deep; the limit is {limits.max_depth} "
            "(TRACEWATCH_LIMITS max_depth)",
        )


def too_deep(raw: bytes, limits: InputLimits) -> bool:
    """`check_depth` as a question, for callers that decide what to do themselves."""
    try:
        check_depth(raw, limits)
    except LimitExceeded:
        return True
    return False


def value_depth(value: object, limit: int) -> int:
    """Nesting of an already-parsed value, walked without recursion and stopping past `limit`."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((c, d + 1) for c in children if isinstance(c, dict | list))
    return deepest


def check_time(name: str, value: datetime | None, limits: InputLimits) -> None:
    """A time outside [earliest, now + slack] is a broken clock or a hostile record."""
    if value is None:
        return
    if value < limits.earliest or value > limits.latest():
        raise LimitExceeded(
            "time_out_of_range",
            f"{name} {value.isoformat()} is outside {limits.earliest:%Y-%m-%d} .. now + "
            f"{limits.future_slack_s}s (TRACEWATCH_LIMITS earliest / future_slack_s)",
        )
