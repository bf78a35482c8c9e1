"""Model Context Protocol JSON-RPC messages: `tools/call` requests and `CallToolResult`s.

A file may hold one message, a JSON-RPC batch, or a session log (a list of requests and
responses); requests and responses are paired by JSON-RPC id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    as_arguments,
    short,
    text_of,
)


def _is_result(m: dict[str, Any]) -> bool:
    return (
        isinstance(m.get("content"), list)
        and (
            "structuredContent" in m
            or "isError" in m
            or all(isinstance(c, dict) and "type" in c for c in m["content"])
        )
        and "role" not in m
    )


def _msgs(doc: Any) -> list[dict[str, Any]]:
    items = doc if isinstance(doc, list) else [doc]
    return [m for m in items if isinstance(m, dict)]


class MCPAdapter(Adapter):
    name = "mcp"
    description = "Model Context Protocol JSON-RPC tools/call requests and CallToolResults"
    versions = "MCP JSON-RPC 2024-11-05 / 2025-06-18 tools/call and CallToolResult"

    def detect(self, doc: Any) -> bool:
        msgs = _msgs(doc)
        if not msgs or (isinstance(doc, list) and len(msgs) != len(doc)):
            return False
        return all(m.get("jsonrpc") == "2.0" or _is_result(m) for m in msgs)

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        b = StepBuilder()
        for i, m in enumerate(_msgs(doc)):
            rpc_id = m.get("id")
            call_id = f"rpc:{rpc_id}" if rpc_id is not None else None
            if "method" in m:
                params = m.get("params") or {}
                found: list[Attachment] = []
                if m["method"] == "tools/call":
                    b.add(
                        Actor.agent,
                        StepKind.tool_call,
                        tool_name=params.get("name"),
                        call_id=call_id,
                        action=params.get("name"),
                        arguments=as_arguments(params.get("arguments") or {}, found),
                        target_app="mcp",
                        attachments=found,
                    )
                else:
                    b.add(
                        Actor.agent,
                        StepKind.tool_call,
                        tool_name=m["method"],
                        call_id=call_id,
                        action=m["method"],
                        arguments=as_arguments(params, found),
                        target_app="mcp",
                        attachments=found,
                    )
                continue
            result = m.get("result") if "result" in m else (m if _is_result(m) else None)
            if isinstance(m.get("error"), dict):
                err = m["error"]
                b.result(call_id, f"error {err.get('code')}: {err.get('message')}", is_error=True)
            elif isinstance(result, dict):
                found = []
                text = text_of(result.get("content"), found)
                if result.get("structuredContent") is not None:
                    structured = short(result["structuredContent"], 16000)
                    text = f"{text}\n{structured}" if text else structured
                b.result(
                    call_id,
                    short(text, 16000),
                    is_error=bool(result.get("isError")),
                    attachments=found,
                    tool_name="mcp",
                )
            else:
                raise AdapterError(f"messages[{i}]: neither a request, a result nor an error")
        yield ParsedTrace(steps=b.steps, agent="mcp")
