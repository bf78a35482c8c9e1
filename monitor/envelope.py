"""The identity envelope: who and when, around a native trace.

Traces almost never say which account ran them or when, so ingestion takes both from this
wrapper (one JSON object per line of a `.jsonl`/`.jsonl.gz` file, or one POSTed object).
Unknown keys are refused so that a typo such as "acount_id" is an error, not a silent default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1)
    interaction_id: str | None = Field(None, min_length=1)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    format: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    trace: Any = Field(..., description="the native trace, in any supported format")


def describe_validation_error(exc: ValidationError) -> str:
    """Field paths and messages only: input values may hold secrets and must not be echoed."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
