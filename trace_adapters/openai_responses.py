"""OpenAI Responses API items: message, reasoning, computer_call(_output), function_call(_output).

Accepts a request body (`{"model", "input": [...]}`), a response object (`{"object": "response",
"output": [...]}`), both (`input` and `output`), or a bare list of items. A computer_call's
action(s) become `computer_action` steps; its output's `current_url` (on the item or inside
`output`, as the CUA sample app writes it) becomes the step's target URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
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

ITEM_TYPES = frozenset(
    {
        "message",
        "reasoning",
        "computer_call",
        "computer_call_output",
        "function_call",
        "function_call_output",
        "web_search_call",
        "file_search_call",
        "local_shell_call",
        "local_shell_call_output",
        "item_reference",
    }
)
_ROLES = {k: v for k, v in ROLE_ACTORS.items() if v != Actor.tool}


_ITEM_KEYS = ("input", "output", "items", "output_items", "input_items")


def _typed_items(val: Any) -> bool:
    return (
        isinstance(val, list)
        and bool(val)
        and all(isinstance(i, dict) and i.get("type") in ITEM_TYPES for i in val)
    )


def _items(doc: Any) -> list[Any] | None:
    """The items of a body, a response, a logged pair of both, or a bare list.

    Loggers name the lists their own way (`output_items`, a nested `response.output`), so
    besides the API's own keys any top-level list made only of Responses items is read too.
    """
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        return None
    items: list[Any] = []
    found = False
    for key in _ITEM_KEYS:
        val = doc.get(key)
        if isinstance(val, list):
            items.extend(val)
            found = True
        elif key == "input" and isinstance(val, str):
            items.append({"type": "message", "role": "user", "content": val})
            found = True
    nested = doc.get("response")
    if isinstance(nested, dict) and isinstance(nested.get("output"), list):
        items.extend(nested["output"])
        found = True
    for key, val in doc.items():
        if key not in _ITEM_KEYS and key != "response" and _typed_items(val):
            items.extend(val)
            found = True
    return items if found else None


class OpenAIResponsesAdapter(Adapter):
    name = "openai_responses"
    description = "OpenAI Responses API items (computer_call, function_call, reasoning, message)"
    versions = "Responses items: computer_call (action or actions), function_call, local_shell_call"

    def detect(self, doc: Any) -> bool:
        items = _items(doc)
        if not items or not all(isinstance(i, dict) for i in items):
            return False
        typed = [i.get("type") for i in items if "type" in i]
        return (
            bool(typed)
            and all(t in ITEM_TYPES for t in typed)
            and any(t != "message" for t in typed)
            | (isinstance(doc, dict) and doc.get("object") == "response")
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        items = _items(doc)
        if items is None:
            raise AdapterError("expected Responses items under 'input'/'output' or a list")
        body = doc if isinstance(doc, dict) else {}
        b = StepBuilder()
        if isinstance(body.get("instructions"), str):
            b.message(Actor.system, body["instructions"])
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise AdapterError(f"items[{i}]: expected an object")
            self._item(b, item, f"items[{i}]")
        meta: dict[str, Any] = {}
        if body.get("usage"):
            meta["usage"] = body["usage"]
        if body.get("previous_response_id"):
            meta["previous_response_id"] = body["previous_response_id"]
        created = ts_from_epoch(body.get("created_at"))
        yield ParsedTrace(
            steps=b.steps,
            model=body.get("model"),
            native_id=body.get("id") if body.get("object") == "response" else None,
            started_at=created,
            metadata=meta,
        )

    def _item(self, b: StepBuilder, item: dict[str, Any], where: str) -> None:
        itype = item.get("type", "message")
        found: list[Attachment] = []
        if itype == "message":
            role = item.get("role", "user")
            if role not in _ROLES:
                raise AdapterError(f"{where}.role: unknown role {role!r}")
            text = text_of(item.get("content"), found)
            b.message(_ROLES[role], text, attachments=found)
        elif itype == "reasoning":
            text = text_of(item.get("summary") or item.get("content"))
            if text:
                b.message(Actor.agent, text, action="reasoning")
        elif itype == "computer_call":
            actions = item.get("actions") or ([item["action"]] if item.get("action") else [])
            if not actions:
                raise AdapterError(f"{where}.action: computer_call without an action")
            for k, action in enumerate(actions):
                if not isinstance(action, dict) or not action.get("type"):
                    raise AdapterError(f"{where}.action[{k}].type: missing action type")
                args = {key: v for key, v in action.items() if key != "type"}
                text = action.get("text") if action["type"] == "type" else None
                if action["type"] == "keypress":
                    text = "+".join(map(str, action.get("keys") or []))
                b.add(
                    Actor.agent,
                    StepKind.computer_action,
                    tool_name="computer",
                    # Batched actions share one call id; only the last is paired with the output.
                    call_id=item.get("call_id") if k == len(actions) - 1 else None,
                    action=action["type"],
                    arguments=args,
                    text=text,
                )
            checks = item.get("pending_safety_checks") or []
            if checks:
                b.steps[-1].arguments = {
                    **(b.steps[-1].arguments or {}),
                    "pending_safety_checks": [c.get("code") for c in checks if isinstance(c, dict)],
                }
        elif itype == "computer_call_output":
            output = item.get("output") or {}
            text_of(output, found)
            url = item.get("current_url") or (
                output.get("current_url") if isinstance(output, dict) else None
            )
            b.result(item.get("call_id"), None, attachments=found, target_url=url)
        elif itype == "function_call":
            args = as_arguments(item.get("arguments"), found)
            url = (args or {}).get("url")
            b.add(
                Actor.agent,
                StepKind.tool_call,
                tool_name=item.get("name"),
                call_id=item.get("call_id"),
                action=item.get("name"),
                arguments=args,
                target_url=url if isinstance(url, str) else None,
                attachments=found,
            )
        elif itype in ("function_call_output", "local_shell_call_output"):
            text = text_of(item.get("output"), found)
            b.result(item.get("call_id"), short(text, 16000), attachments=found)
        elif itype == "web_search_call":
            action = item.get("action") or {}
            b.add(
                Actor.agent,
                StepKind.navigation,
                tool_name="web_search",
                call_id=item.get("id"),
                action=action.get("type", "search"),
                arguments=action,
                target_url=action.get("url"),
                text=action.get("query"),
            )
        elif itype == "local_shell_call":
            action = item.get("action") or {}
            cmd = action.get("command")
            b.add(
                Actor.agent,
                StepKind.tool_call,
                tool_name="local_shell",
                call_id=item.get("call_id"),
                action="run",
                arguments=action,
                text=" ".join(cmd) if isinstance(cmd, list) else cmd,
            )
        elif itype in ("file_search_call", "item_reference"):
            b.add(
                Actor.agent,
                StepKind.tool_call,
                tool_name=itype,
                call_id=item.get("id"),
                action=itype,
            )
        else:
            raise AdapterError(f"{where}.type: unknown item type {itype!r}")
