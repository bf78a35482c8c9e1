"""What an adapter is, and the helpers every adapter shares.

Adapters are thin: they know one native format and turn a parsed document into
`ParsedTrace`s. Identity (account) and ingestion bookkeeping are added by the ingest layer,
because traces almost never carry them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, Field

from tracewatch.monitor.limits import LimitExceeded
from tracewatch.monitor.models import Actor, Attachment, Step, StepKind, domain_of
from tracewatch.trace_adapters.blobs import as_attachment, scrub

# Without a scheme or a path, "word.word" is a link only on a TLD people type bare.
BARE_TLDS = frozenset(
    [
        "com",
        "net",
        "org",
        "io",
        "co",
        "shop",
        "store",
        "example",
        "info",
        "biz",
        "app",
        "me",
        "ly",
        "gg",
        "tv",
        "xyz",
        "online",
        "site",
        "link",
        "dev",
        "ai",
        "social",
        "news",
        "blog",
        "page",
        "cloud",
        "tech",
        "edu",
        "gov",
        "us",
        "uk",
        "de",
        "fr",
        "ca",
        "au",
        "in",
    ]
)


class AdapterError(ValueError):
    """The document is of this adapter's format but cannot be read; the message says where."""


class ParsedTrace(BaseModel):
    """An interaction as the trace itself tells it: no account unless the trace names one."""

    steps: list[Step]
    started_at: datetime | None = None
    ended_at: datetime | None = None
    agent: str | None = None
    model: str | None = None
    native_id: str | None = Field(None, description="the trace's own session/sample id")
    account_hint: str | None = Field(None, description="a user id found inside the trace")
    metadata: dict[str, Any] = Field(default_factory=dict)


class Adapter:
    """One native trace format. Subclasses set `name` and implement detect/parse."""

    name: ClassVar[str]
    description: ClassVar[str]
    # Extensions that mark a file as this format even before reading it (e.g. ".traj").
    extensions: ClassVar[tuple[str, ...]] = ()
    # The versions or variants of the format this adapter reads, for `tracewatch formats`.
    versions: ClassVar[str] = ""

    def detect(self, doc: Any) -> bool:
        raise NotImplementedError

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        raise NotImplementedError


class StepBuilder:
    """Accumulates steps and pairs tool results with their calls by id, never by position."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        # Ids can repeat (replayed SWE-agent histories reuse them), so each id keeps the calls
        # still waiting for a result, oldest first.
        self._calls: dict[str, list[Step]] = {}

    def add(self, actor: Actor, kind: StepKind, **fields: Any) -> Step:
        step = Step(index=len(self.steps), actor=actor, kind=kind, **fields)
        self.steps.append(step)
        if step.call_id and kind in (
            StepKind.tool_call,
            StepKind.computer_action,
            StepKind.navigation,
        ):
            self._calls.setdefault(step.call_id, []).append(step)
        return step

    def message(self, actor: Actor, text: str | None, **fields: Any) -> Step | None:
        if (text is None or not str(text).strip()) and not fields.get("attachments"):
            return None
        return self.add(actor, StepKind.message, text=text, **fields)

    def result(
        self,
        call_id: str | None,
        text: str | None,
        *,
        is_error: bool = False,
        attachments: list[Attachment] | None = None,
        tool_name: str | None = None,
        target_url: str | None = None,
        timestamp: datetime | None = None,
    ) -> Step:
        """Attach a result to the call with this id, or keep it as its own step if none."""
        call = self._pending_call(call_id)
        if call is not None:
            if call.result and text and text not in call.result:
                call.result = f"{call.result}\n{text}"
            elif text and not call.result:
                call.result = text
            call.is_error = call.is_error or is_error
            if attachments:
                call.attachments.extend(attachments)
            if isinstance(target_url, str) and target_url and not call.target_url:
                # assigned, not validated: only a string may land here
                call.target_url = target_url
                call.target_domain = domain_of(target_url)
            return call
        return self.add(
            Actor.tool,
            StepKind.tool_result,
            call_id=call_id,
            tool_name=tool_name,
            result=text,
            is_error=is_error,
            attachments=attachments or [],
            target_url=target_url,
            timestamp=timestamp,
        )

    def _pending_call(self, call_id: str | None) -> Step | None:
        calls = self._calls.get(call_id) if call_id else None
        if not calls:
            return None
        for call in calls:
            if call.result is None and not call.is_error:
                return call
        return calls[-1]


# Chat-style role names of every format, to our actors.
ROLE_ACTORS = {
    "system": Actor.system,
    "developer": Actor.system,
    "user": Actor.user,
    "assistant": Actor.agent,
    "model": Actor.agent,
    "tool": Actor.tool,
    "function": Actor.tool,
}


# Tool / action names that mean "go to this URL", across formats.
NAVIGATION_ACTIONS = frozenset(
    {
        "navigate",
        "go_to_url",
        "goto",
        "open_tab",
        "open_url",
        "web_browser_go",
        "browser_navigate",  # Playwright MCP
        "navigate_to",
        "go_to",
        "open_page",
        "browse",
        "visit",
        "search_google",
        "search",
    }
)


def loads_maybe(value: Any) -> Any:
    """Second parse for JSON carried inside strings (OpenAI arguments, OTel attributes)."""
    if isinstance(value, (bytes, str)):
        text = value.strip() if isinstance(value, str) else value
        if text and (text[:1] in ("{", "[") if isinstance(text, str) else text[:1] in b"{["):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return value
    return value


def as_arguments(value: Any, found: list[Attachment]) -> dict[str, Any] | None:
    """Tool arguments as a dict with blobs replaced; malformed JSON is kept as {"_raw": text}."""
    if value is None:
        return None
    parsed = loads_maybe(value)
    if isinstance(parsed, dict):
        return scrub(parsed, found)
    if isinstance(parsed, str) and not parsed.strip():
        return {}
    return {"_raw": scrub(parsed, found)}


def text_of(content: Any, found: list[Attachment] | None = None) -> str | None:
    """Flatten the content shapes formats use (str, list of parts, dict with text) to text.

    Images and files in the content go to `found` as attachments, never into the text.
    """
    if content is None:
        return None
    if isinstance(content, str):
        att = as_attachment(content)
        if att is not None:
            if found is not None:
                found.append(att)
            return None
        return content
    if isinstance(content, (int, float, bool)):
        return str(content)
    if isinstance(content, list):
        parts = [text_of(c, found) for c in content]
        joined = "\n".join(p for p in parts if p)
        return joined or None
    if isinstance(content, dict):
        ctype = content.get("type")
        for key in ("text", "content", "output_text", "refusal", "reasoning", "thinking"):
            if key in content and isinstance(content[key], (str, list)):
                return text_of(content[key], found)
        # Image / file parts: base64 under source.data, image_url.url, image, data, file_data.
        for key in ("source", "image_url", "image", "data", "file_data", "blob", "uri"):
            if key in content:
                inner = content[key]
                if isinstance(inner, dict):
                    inner_media = inner.get("media_type") or inner.get("mime_type")
                    payload = inner.get("data") or inner.get("url")
                else:
                    inner_media, payload = content.get("mime_type"), inner
                att = as_attachment(payload)
                if att is not None:
                    if inner_media and att.media_type == "application/octet-stream":
                        att = att.model_copy(update={"media_type": inner_media})
                    if found is not None:
                        found.append(att)
                    return None
        if ctype in ("image", "input_image", "image_url", "file", "blob"):
            return None
        return None
    return str(content)


def ts_from_epoch(value: Any) -> datetime | None:
    """Epoch seconds, milliseconds or nanoseconds (as number or decimal string) to UTC."""
    if value in (None, "", 0, "0"):
        return None
    try:
        num = float(value)
    except (TypeError, ValueError):
        return None
    if num > 1e17:
        num /= 1e9
    elif num > 1e14:
        num /= 1e6
    elif num > 1e11:
        num /= 1e3
    try:
        return datetime.fromtimestamp(num, tz=UTC)
    except (OverflowError, OSError, ValueError):  # 1e30 ns, inf, nan: no clock says that
        raise LimitExceeded(
            "time_out_of_range", f"epoch time {value!r} is out of any representable range"
        ) from None


def ts_from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def span(steps: list[Step]) -> tuple[datetime | None, datetime | None]:
    times = [s.timestamp for s in steps if s.timestamp is not None]
    return (min(times), max(times)) if times else (None, None)


def short(value: Any, limit: int = 4000) -> str | None:
    """Stringify a result for storage; very long tool outputs are cut with a visible marker."""
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) > limit:
        return text[:limit] + f"… [{len(text) - limit} more chars]"
    return text
