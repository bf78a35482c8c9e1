"""Langfuse trace exports: `{"trace": {...}, "observations": [...]}`.

Langfuse records some twenty agent frameworks through its OTel endpoint, each writing input
and output in its own shape (a prompt object, a chat message list, LangChain messages, a
Responses item list, Anthropic content blocks), usually as JSON strings. So this reader is
shape-driven, not framework-driven: the task is the first user text it finds (the trace's
input, else a generation's input), TOOL observations are tool calls with their results,
generations give the agent's words (and the calls they request when no TOOL observation
records them), and the trace's output is the agent's last word.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    as_arguments,
    short,
    ts_from_iso,
)

_USER_ROLES = {"user", "human"}


def _decode(value: Any) -> Any:
    """JSON strings decoded, twice-encoded ones too (Langfuse stores OTel attribute strings)."""
    for _ in range(3):
        if not (isinstance(value, str) and value.strip()[:1] in ("{", "[", '"')):
            break
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            break
    return value


def _text(value: Any, depth: int = 0) -> str:
    """The words in a framework's message value, whatever its shape."""
    value = _decode(value)
    if depth > 6 or value is None:
        return ""
    if isinstance(value, str):
        return "" if value in ("None", "null") else value
    if isinstance(value, list):
        parts = [_text(v, depth + 1) for v in value]
        return "\n".join(p for p in parts if p)
    if isinstance(value, dict):
        if value.get("type") in ("tool_use", "function_call", "tool_call"):
            return ""
        for key in ("text", "content", "output_text", "output", "answer", "result"):
            if key in value and (t := _text(value[key], depth + 1)):
                return t
        if isinstance(value.get("messages"), list) and value["messages"]:
            return _text(value["messages"][-1], depth + 1)
    return ""


def _messages(value: Any) -> list[dict[str, Any]]:
    value = _decode(value)
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def _role(msg: dict[str, Any]) -> str:
    return str(msg.get("role") or msg.get("type") or "").lower()


def _task(trace: dict[str, Any], observations: list[dict[str, Any]]) -> str | None:
    for value in [trace.get("input"), *(o.get("input") for o in observations)]:
        value = _decode(value)
        if isinstance(value, dict) and isinstance(value.get("prompt"), str):
            return value["prompt"]
        for msg in _messages(value):
            if _role(msg) in _USER_ROLES and (t := _text(msg.get("content"))):
                return t
        if isinstance(value, str) and value not in ("None", "null", ""):
            return value
    return None


def _requested_calls(output: Any) -> list[tuple[str | None, str, Any]]:
    """(id, name, arguments) of tool calls a generation's output asks for."""
    out: list[tuple[str | None, str, Any]] = []
    value = _decode(output)
    blocks: list[Any] = []
    if isinstance(value, dict):
        content = value.get("content")
        blocks += content if isinstance(content, list) else []
        blocks += (
            value.get("tool_calls")
            or (value.get("additional_kwargs") or {}).get("tool_calls")
            or []
        )
        blocks += value.get("output") if isinstance(value.get("output"), list) else []
    elif isinstance(value, list):
        blocks = value
    for b in blocks:
        if not isinstance(b, dict):
            continue
        if b.get("type") == "tool_use":
            out.append((b.get("id"), str(b.get("name")), b.get("input")))
        elif b.get("type") == "function_call":
            out.append((b.get("call_id") or b.get("id"), str(b.get("name")), b.get("arguments")))
        elif isinstance(b.get("function"), dict):
            fn = b["function"]
            out.append((b.get("id"), str(fn.get("name")), fn.get("arguments")))
    return out


class LangfuseAdapter(Adapter):
    name = "langfuse"
    description = "Langfuse trace exports (trace + observations), from any framework it records"
    versions = "Langfuse v2/v3 trace export (SPAN, GENERATION, TOOL, EVENT, AGENT observations)"

    def detect(self, doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and isinstance(doc.get("trace"), dict)
            and isinstance(doc.get("observations"), list)
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        if not self.detect(doc):
            raise AdapterError("expected {'trace': {...}, 'observations': [...]}")
        trace = doc["trace"]
        obs = sorted(
            (o for o in doc["observations"] if isinstance(o, dict)),
            key=lambda o: (str(o.get("startTime") or ""), str(o.get("id") or "")),
        )
        b = StepBuilder()
        task = _task(trace, obs)
        if task:
            b.message(Actor.user, task, timestamp=ts_from_iso(trace.get("timestamp")))
        recorded_tools = any(o.get("type") == "TOOL" for o in obs)
        said: set[str] = set()
        model = None
        for o in obs:
            ts = ts_from_iso(o.get("startTime"))
            kind = o.get("type")
            if kind == "TOOL":
                found: list[Attachment] = []
                args = _decode(o.get("input"))
                if isinstance(args, dict) and set(args) == {"input"}:
                    args = args["input"]
                b.add(
                    Actor.agent,
                    StepKind.tool_call,
                    tool_name=str(o.get("name") or "tool"),
                    call_id=str(o.get("id")),
                    action=str(o.get("name") or "tool"),
                    arguments=as_arguments(args, found),
                    attachments=found,
                    timestamp=ts,
                )
                b.result(
                    str(o.get("id")),
                    short(_text(o.get("output")), 16000),
                    is_error=o.get("level") == "ERROR",
                )
            elif kind == "GENERATION":
                model = model or o.get("model")
                text = _text(o.get("output"))
                if text and text not in said:
                    said.add(text)
                    b.message(Actor.agent, text, timestamp=ts)
                if not recorded_tools:
                    for call_id, name, args in _requested_calls(o.get("output")):
                        found = []
                        b.add(
                            Actor.agent,
                            StepKind.tool_call,
                            tool_name=name,
                            call_id=call_id,
                            action=name,
                            arguments=as_arguments(args, found),
                            attachments=found,
                            timestamp=ts,
                        )
            elif kind == "EVENT" or o.get("level") == "ERROR":
                b.add(
                    Actor.environment,
                    StepKind.observation,
                    text=str(o.get("name") or "event"),
                    action="event",
                    is_error=o.get("level") == "ERROR",
                    timestamp=ts,
                )
        final = _text(trace.get("output"))
        if final and final not in said:
            b.message(Actor.agent, final)
        if not b.steps:
            raise AdapterError("the trace holds no input, output, generation or tool call")
        times = [
            t
            for o in obs
            for t in (ts_from_iso(o.get("startTime")), ts_from_iso(o.get("endTime")))
            if t
        ]
        return_meta = {
            k: trace[k] for k in ("name", "sessionId", "release", "environment") if trace.get(k)
        }
        yield ParsedTrace(
            steps=b.steps,
            started_at=ts_from_iso(trace.get("timestamp")) or (min(times) if times else None),
            ended_at=max(times) if times else None,
            agent=trace.get("name"),
            model=model,
            native_id=trace.get("id"),
            account_hint=trace.get("userId"),
            metadata=return_meta,
        )
