"""Anthropic Messages API bodies: text, thinking, tool_use / tool_result, computer use.

Accepts a request body (`{"model", "system", "tools", "messages": [...]}`), optionally with the
final response under `response`, or a bare list of messages. Computer-use actions of the
2024-10-22, 2025-01-24 and 2025-11-24 tool versions become `computer_action` steps with the
action name and its arguments; `bash` and the text editor tools become tool calls whose action
is the command.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
    BARE_TLDS,
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    as_arguments,
    short,
    text_of,
)

# Every action of the three computer-use tool versions (computer_20241022 / 20250124 / 20251124).
COMPUTER_ACTIONS = frozenset(
    {
        # 2024-10-22
        "key",
        "type",
        "mouse_move",
        "left_click",
        "left_click_drag",
        "right_click",
        "middle_click",
        "double_click",
        "screenshot",
        "cursor_position",
        # 2025-01-24
        "left_mouse_down",
        "left_mouse_up",
        "scroll",
        "hold_key",
        "wait",
        "triple_click",
        # 2025-11-24
        "zoom",
    }
)
# An agent driving a real browser through computer use types the URL into the address bar;
# that typed text is the only place the destination appears in the trace.
_TYPED_URL = re.compile(r"^(https?://[^\s]+|(?:[a-z0-9-]+\.)+[a-z]{2,}(?:/[^\s]*)?)$", re.I)
EDITOR_TOOLS = frozenset({"str_replace_editor", "str_replace_based_edit_tool"})
_BLOCK_TYPES = frozenset(
    {
        "text",
        "tool_use",
        "tool_result",
        "image",
        "thinking",
        "redacted_thinking",
        "document",
        "server_tool_use",
        "web_search_tool_result",
    }
)


def _messages(doc: Any) -> list[dict[str, Any]] | None:
    if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
        return doc["messages"]
    if isinstance(doc, list) and doc and all(isinstance(m, dict) for m in doc):
        return doc
    return None


class AnthropicMessagesAdapter(Adapter):
    name = "anthropic"
    description = "Anthropic Messages API request/response bodies (tool_use, computer use)"
    versions = "computer_20241022, computer_20250124, computer_20251124; bash and text editor tools"

    def detect(self, doc: Any) -> bool:
        msgs = _messages(doc)
        if not msgs:
            return False
        if isinstance(doc, dict):
            tools = doc.get("tools") or []
            if any(
                isinstance(t, dict)
                and (str(t.get("type", "")).startswith(("computer_", "bash_", "text_editor_")))
                for t in tools
            ):
                return True
        roles = {m.get("role") for m in msgs}
        if not roles <= {"user", "assistant"}:
            return False
        blocks = [b for m in msgs if isinstance(m.get("content"), list) for b in m["content"]]
        return bool(blocks) and all(
            isinstance(b, dict) and b.get("type") in _BLOCK_TYPES for b in blocks
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        msgs = _messages(doc)
        if msgs is None:
            raise AdapterError("expected a Messages body with a 'messages' list")
        body = doc if isinstance(doc, dict) else {}
        b = StepBuilder()
        system = body.get("system")
        if system:
            b.message(Actor.system, text_of(system))
        all_msgs = list(msgs)
        response = body.get("response")
        if isinstance(response, dict) and isinstance(response.get("content"), list):
            all_msgs.append({"role": "assistant", "content": response["content"]})
        for i, msg in enumerate(all_msgs):
            role = msg.get("role")
            if role not in ("user", "assistant"):
                raise AdapterError(
                    f"messages[{i}].role: expected 'user' or 'assistant', got {role!r}"
                )
            content = msg.get("content")
            actor = Actor.user if role == "user" else Actor.agent
            if isinstance(content, str):
                b.message(actor, content)
                continue
            if not isinstance(content, list):
                raise AdapterError(f"messages[{i}].content: expected a string or a list of blocks")
            for j, block in enumerate(content):
                self._block(b, actor, block, f"messages[{i}].content[{j}]")
        model = body.get("model") or (response or {}).get("model")
        usage = (response or {}).get("usage") or body.get("usage")
        meta: dict[str, Any] = {}
        if usage:
            meta["usage"] = usage
        tool_versions = [t.get("type") for t in body.get("tools") or [] if isinstance(t, dict)]
        if any(tool_versions):
            meta["tool_versions"] = [t for t in tool_versions if t]
        yield ParsedTrace(
            steps=b.steps,
            model=model,
            agent=body.get("agent") if isinstance(body.get("agent"), str) else None,
            native_id=(response or {}).get("id"),
            metadata=meta,
        )

    def _block(self, b: StepBuilder, actor: Actor, block: Any, where: str) -> None:
        if not isinstance(block, dict):
            raise AdapterError(f"{where}: expected an object")
        btype = block.get("type")
        found: list[Attachment] = []
        if btype == "text":
            b.message(actor, block.get("text"))
        elif btype in ("thinking", "redacted_thinking"):
            # Reasoning is the agent's own text: kept as a message so injected plans show.
            text = block.get("thinking")
            if text:
                b.message(Actor.agent, text, action="thinking")
        elif btype in ("tool_use", "server_tool_use"):
            self._tool_use(b, block, where)
        elif btype == "tool_result":
            text = text_of(block.get("content"), found)
            b.result(
                block.get("tool_use_id"),
                short(text, 16000),
                is_error=bool(block.get("is_error")),
                attachments=found,
            )
        elif btype in ("image", "document"):
            text_of(block, found)
            if found:
                b.message(actor, None, attachments=found)
        elif btype == "web_search_tool_result":
            b.result(block.get("tool_use_id"), short(block.get("content"), 16000))
        else:
            raise AdapterError(f"{where}.type: unknown content block type {btype!r}")

    def _tool_use(self, b: StepBuilder, block: dict[str, Any], where: str) -> None:
        name = block.get("name")
        if not name:
            raise AdapterError(f"{where}.name: tool_use without a name")
        found: list[Attachment] = []
        args = as_arguments(block.get("input") or {}, found) or {}
        call_id = block.get("id")
        action = args.get("action") if isinstance(args.get("action"), str) else None
        if name == "computer" or (action in COMPUTER_ACTIONS and "coordinate" in args):
            if action is None:
                raise AdapterError(f"{where}.input.action: computer tool call without an action")
            b.add(
                Actor.agent,
                StepKind.computer_action,
                tool_name=name,
                call_id=call_id,
                action=action,
                arguments=args,
                text=args.get("text") if action in ("type", "key") else None,
                target_url=_typed_url(args) if action == "type" else None,
                attachments=found,
            )
        elif name == "bash" or name.startswith("bash_"):
            b.add(
                Actor.agent,
                StepKind.tool_call,
                tool_name=name,
                call_id=call_id,
                action="restart" if args.get("restart") else "run",
                arguments=args,
                text=args.get("command"),
                attachments=found,
            )
        elif name in EDITOR_TOOLS or name.startswith("text_editor"):
            b.add(
                Actor.agent,
                StepKind.tool_call,
                tool_name=name,
                call_id=call_id,
                action=args.get("command"),
                arguments=args,
                target_app=args.get("path"),
                attachments=found,
            )
        else:
            url = args.get("url") if isinstance(args.get("url"), str) else None
            b.add(
                Actor.agent,
                StepKind.navigation
                if url and name in ("navigate", "browser_navigate")
                else StepKind.tool_call,
                tool_name=name,
                call_id=call_id,
                action=action or name,
                arguments=args,
                target_url=url,
                attachments=found,
            )


def _typed_url(args: dict[str, Any]) -> str | None:
    text = args.get("text")
    if isinstance(text, str) and _TYPED_URL.match(text.strip()):
        url = text.strip()
        if "://" in url:
            return url
        host = url.split("/", 1)[0].lower()
        # a bare `first.last` is a username typed into a form, not an address
        if "/" in url or host.startswith("www.") or host.rsplit(".", 1)[-1] in BARE_TLDS:
            return f"https://{url}"
    return None
