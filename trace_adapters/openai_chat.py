"""OpenAI Chat Completions conversations with tool_calls.

Accepts a request body (`{"model", "messages": [...]}`), optionally with the completion under
`response` or `choices`, a bare `chat.completion` object, or a bare list of messages. Tool
results (`role: tool`, `tool_call_id`) are paired with their calls by id. `arguments` is a JSON
string that is sometimes malformed; it is then kept raw rather than rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
    NAVIGATION_ACTIONS,
    ROLE_ACTORS,
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    as_arguments,
    short,
    text_of,
    ts_from_epoch,
)

_ROLES = ROLE_ACTORS


def _messages(doc: Any) -> list[Any] | None:
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        return None
    msgs = list(doc["messages"]) if isinstance(doc.get("messages"), list) else None
    completion = doc.get("response") if isinstance(doc.get("response"), dict) else doc
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if isinstance(choices, list) and choices:
        msgs = msgs or []
        first = choices[0]
        if isinstance(first, dict) and isinstance(first.get("message"), dict):
            msgs.append(first["message"])
    return msgs


def add_tool_call(b: StepBuilder, call: dict[str, Any], where: str) -> None:
    """One Chat-format tool call (`{id, type, function: {name, arguments}}`) as a step."""
    fn = call.get("function")
    if isinstance(fn, dict):
        name, raw_args = fn.get("name"), fn.get("arguments")
    else:  # normalised variants (AgentDojo, Inspect): {function: name, args|arguments: {...}}
        name, raw_args = fn, call.get("arguments", call.get("args"))
    if not name:
        raise AdapterError(f"{where}.function.name: tool call without a name")
    found: list[Attachment] = []
    args = as_arguments(raw_args, found)
    url = (args or {}).get("url")
    url = url if isinstance(url, str) else None
    b.add(
        Actor.agent,
        StepKind.navigation if url and name in NAVIGATION_ACTIONS else StepKind.tool_call,
        tool_name=name,
        call_id=call.get("id"),
        action=name,
        arguments=args,
        target_url=url,
        attachments=found,
    )


class OpenAIChatAdapter(Adapter):
    name = "openai_chat"
    description = "OpenAI Chat Completions messages with tool_calls"
    versions = (
        "Chat Completions messages and chat.completion objects (tool_calls, legacy function_call)"
    )

    def detect(self, doc: Any) -> bool:
        if isinstance(doc, dict) and doc.get("object") == "chat.completion":
            return True
        msgs = _messages(doc)
        if not msgs or not all(isinstance(m, dict) and "role" in m for m in msgs):
            return False
        for m in msgs:
            calls = m.get("tool_calls")
            if calls and all(
                isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls
            ):
                return True
            if m.get("role") in ("tool", "function", "system", "developer"):
                return True
        return all(isinstance(m.get("content"), str) or m.get("content") is None for m in msgs)

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        msgs = _messages(doc)
        if msgs is None:
            raise AdapterError("expected Chat Completions 'messages' or 'choices'")
        body = doc if isinstance(doc, dict) else {}
        b = StepBuilder()
        for i, msg in enumerate(msgs):
            add_chat_message(b, msg, f"messages[{i}]")
        completion = body.get("response") if isinstance(body.get("response"), dict) else body
        yield ParsedTrace(
            steps=b.steps,
            model=body.get("model") or completion.get("model"),
            native_id=completion.get("id")
            if completion.get("object") == "chat.completion"
            else None,
            started_at=ts_from_epoch(completion.get("created")),
            metadata={"usage": completion["usage"]} if completion.get("usage") else {},
        )


def add_chat_message(b: StepBuilder, msg: Any, where: str) -> None:
    """A Chat-shaped message (also used by SWE-agent, AgentDojo, Inspect) as steps."""
    if not isinstance(msg, dict):
        raise AdapterError(f"{where}: expected an object")
    role = msg.get("role")
    if role not in _ROLES:
        raise AdapterError(f"{where}.role: unknown role {role!r}")
    found: list[Attachment] = []
    text = text_of(msg.get("content"), found)
    if role in ("tool", "function"):
        err = msg.get("error")
        if isinstance(err, dict):
            err = f"error ({err.get('type', 'unknown')}): {err.get('message', '')}"
        if err:
            text = f"{text}\n{err}" if text else str(err)
        b.result(
            msg.get("tool_call_id") or (msg.get("tool_call") or {}).get("id"),
            short(text, 16000),
            is_error=bool(err),
            attachments=found,
            tool_name=msg.get("name") or msg.get("function"),
        )
        return
    actor = _ROLES[role]
    if text or found:
        b.message(actor, text, attachments=found)
    if isinstance(msg.get("reasoning_content"), str):
        b.message(Actor.agent, msg["reasoning_content"], action="reasoning")
    for k, call in enumerate(msg.get("tool_calls") or []):
        if not isinstance(call, dict):
            raise AdapterError(f"{where}.tool_calls[{k}]: expected an object")
        add_tool_call(b, call, f"{where}.tool_calls[{k}]")
    if isinstance(msg.get("function_call"), dict):  # the pre-tools API
        add_tool_call(b, {"function": msg["function_call"]}, f"{where}.function_call")
