"""The canonical interaction model.

Every trace format is read into these types, and every later stage (store, summarizers,
rollups, judges, reports) reads only these. This module imports nothing else of
tracewatch so that any room can depend on it without cycles.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator


class Actor(StrEnum):
    user = "user"
    agent = "agent"
    tool = "tool"
    environment = "environment"
    system = "system"


class StepKind(StrEnum):
    message = "message"
    tool_call = "tool_call"
    tool_result = "tool_result"
    computer_action = "computer_action"
    navigation = "navigation"
    observation = "observation"


class Attachment(BaseModel):
    """A binary payload seen in a trace, kept as a fingerprint: the bytes never enter the store."""

    model_config = ConfigDict(frozen=True)

    media_type: str
    size: int = Field(ge=0, description="decoded size in bytes")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        # Naive timestamps (OpenHands, some exporters) are taken as UTC: the formats that
        # write them say nothing else, and guessing the host's zone would make ingestion
        # depend on where it runs.
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 9999 at a negative offset, year 1 at a positive one
        raise ValueError(f"time {value.isoformat()} is out of range") from None


def domain_of(url: str | None) -> str | None:
    """Host of a URL without a leading www., or None for non-web targets."""
    if not url:
        return None
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host or ("." not in host and host != "localhost"):
        return None
    return host.removeprefix("www.")


class Step(BaseModel):
    """One thing that happened in an interaction.

    A tool call and its result are one step: the adapter pairs them by call id and fills
    `result`/`is_error` here, so later stages never have to join. A result whose call is not
    in the trace becomes its own `tool_result` step.
    """

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    actor: Actor
    kind: StepKind
    text: str | None = None
    tool_name: str | None = None
    call_id: str | None = None
    action: str | None = None
    arguments: dict[str, Any] | None = None
    target_url: str | None = None
    target_domain: str | None = None
    target_app: str | None = None
    result: str | None = None
    is_error: bool = False
    timestamp: datetime | None = None
    attachments: list[Attachment] = Field(default_factory=list)

    @field_validator("timestamp")
    @classmethod
    def _ts_utc(cls, v: datetime | None) -> datetime | None:
        return _utc(v)

    def model_post_init(self, __context: Any) -> None:
        if self.target_url and not self.target_domain:
            self.target_domain = domain_of(self.target_url)

    @property
    def typed_text(self) -> str | None:
        """Text the agent typed into a UI (computer use `type`, browser `input_text`, ...)."""
        if self.kind in (StepKind.computer_action, StepKind.tool_call) and self.arguments:
            for key in ("text", "value", "input"):
                val = self.arguments.get(key)
                if isinstance(val, str) and self.action in TYPING_ACTIONS:
                    return val
        return None


TYPING_ACTIONS = frozenset(
    {
        "type",
        "input_text",
        "fill",
        "type_text",
        "send_keys",
        "TYPE",
        "keyboard_type",
        "enter_text",
        "type_into",
        "web_browser_type",  # Inspect AI's web browser tool
        "web_browser_type_submit",
        "browser_type",  # Playwright MCP
    }
)


class Interaction(BaseModel):
    """One agent session (a task from request to outcome) for one account."""

    model_config = ConfigDict(extra="forbid")

    interaction_id: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    source_format: str
    started_at: datetime
    ended_at: datetime | None = None
    agent: str | None = None
    model: str | None = None
    steps: list[Step] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    content_hash: str = ""

    @field_validator("started_at", "ended_at")
    @classmethod
    def _times_utc(cls, v: datetime | None) -> datetime | None:
        return _utc(v)

    def model_post_init(self, __context: Any) -> None:
        if not self.content_hash:
            self.content_hash = content_hash(self.source_format, self.agent, self.model, self.steps)


def content_hash(
    source_format: str, agent: str | None, model: str | None, steps: list[Step]
) -> str:
    """Hash of what the interaction did, independent of who did it and when.

    It keys the summary cache (the same content is summarized once) while identity stays
    out of it: two accounts posting the same templated comment must be two interactions
    with one content hash, which is exactly what campaign detection looks for.
    """
    payload = orjson.dumps(
        {
            "f": source_format,
            "a": agent,
            "m": model,
            "s": _steps_json(steps),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(payload).hexdigest()


_STEPS: TypeAdapter[list[Step]] | None = None


def _steps_json(steps: list[Step]) -> list[dict[str, Any]]:
    """Each step as `model_dump(mode="json")` without its time, in one serializer call for
    the list (a call per step was a sixth of building an interaction)."""
    global _STEPS
    if _STEPS is None:
        _STEPS = TypeAdapter(list[Step])
    return _STEPS.dump_python(steps, mode="json", exclude={"__all__": {"timestamp"}})


def derive_interaction_id(account_id: str, started_at: datetime | None, content: str) -> str:
    """Stable id for a trace that came without one: same account, time and content -> same id."""
    started = _utc(started_at)
    raw = f"{account_id}\x1f{started.isoformat() if started else ''}\x1f{content}".encode()
    return "tw_" + hashlib.sha256(raw).hexdigest()[:32]
