"""Time windows: tumbling, aligned to UTC, so the same interaction always lands in the same one.

Windows of a day or less start at UTC midnight (1d) or at 00/06/12/18 UTC (6h), hourly ones
on the hour. A week starts on Monday 00:00 UTC. Alignment is by integer division of the epoch
second, which is what DuckDB's `time_bucket` does for these widths, so SQL and Python agree.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

WINDOWS = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400}
# 1970-01-01 was a Thursday; weeks are offset so they start on Monday (1970-01-05).
_WEEK_ORIGIN = 4 * 86400
_DURATION = re.compile(r"^(\d+)([hdw])$")


class WindowError(ValueError):
    """A window or period string that tracewatch cannot use; the message lists what it can."""


def window_seconds(window: str) -> int:
    if window not in WINDOWS:
        raise WindowError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
    return WINDOWS[window]


def period_for(window: str) -> str:
    """The longer span an account's windows roll up into: a week, or four weeks for 7d windows."""
    return "28d" if window == "7d" else "7d"


def span_seconds(span: str) -> int:
    m = _DURATION.match(span)
    if not m:
        raise WindowError(f"cannot read the span {span!r}; write e.g. 6h, 1d, 7d or 2w")
    n, unit = int(m.group(1)), m.group(2)
    return n * {"h": 3600, "d": 86400, "w": 7 * 86400}[unit]


def origin_for(seconds: int) -> int:
    """Spans of whole weeks start on Monday; shorter ones on the epoch (so on UTC midnight)."""
    return _WEEK_ORIGIN if seconds % (7 * 86400) == 0 else 0


def bucket_start(ts: datetime, seconds: int) -> datetime:
    epoch = int(ts.timestamp())
    origin = origin_for(seconds)
    start = (epoch - origin) // seconds * seconds + origin
    return datetime.fromtimestamp(start, UTC)


def bucket_end(start: datetime, seconds: int) -> datetime:
    return start + timedelta(seconds=seconds)


def parse_when(value: str) -> datetime:
    """An ISO date or timestamp (naive means UTC), or a span back from now such as 7d."""
    if _DURATION.match(value):
        try:
            return datetime.now(UTC) - timedelta(seconds=span_seconds(value))
        except OverflowError:
            raise WindowError(f"the span {value!r} reaches back past year 1") from None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (ValueError, OverflowError):
        raise WindowError(
            f"cannot read the time {value!r}; write 2026-10-05, 2026-10-05T12:00:00Z or 7d"
        ) from None
    return dt
