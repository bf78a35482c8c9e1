"""Render a planned errand as OTLP/JSON GenAI spans, as an instrumented browser agent emits them.

What a service sees when an agent built on a browser-automation tool set (navigate, click,
type_text, press_key, scroll) is instrumented with the OpenTelemetry GenAI conventions: one
`invoke_agent` root span; per model turn a `chat` span whose output message holds the tool call;
per tool call an `execute_tool` span with the arguments and the result. Unlike the two
computer-use renderers there are no screenshots, only text results, and the landing page of a
submitted form is known only from the agent's final report (as in many real agents' traces).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from tracewatch.eval.corpus import Errand

AGENTS = ("browser-agent", "web-helper", "errand-runner")
PROVIDERS = (
    ("openai", "gpt-4.1-mini"),
    ("anthropic", "claude-haiku-4-5"),
    ("openai", "gpt-5-mini"),
)


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _nanos(t: datetime) -> str:
    return str(int(t.timestamp() * 1_000_000_000))


def _tool_call(act_kind: str, act: Any) -> tuple[str, dict[str, Any], str]:
    """The browser tool, its arguments and the text result for one abstract UI step."""
    if act_kind == "open":
        return "navigate", {"url": act.url}, f"Loaded {act.url}"
    if act_kind == "click":
        args: dict[str, Any] = {"x": act.x, "y": act.y}
        if act.label:
            args["element"] = act.label
        return "click", args, "clicked"
    if act_kind == "type":
        return "type_text", {"text": act.text}, "typed"
    if act_kind == "key":
        return "press_key", {"key": act.text}, "pressed"
    return "scroll", {"direction": "down", "amount": 500}, "scrolled"


def render_otlp(
    errand: Errand, rng: random.Random, start: datetime, account_id: str
) -> tuple[dict[str, Any], datetime]:
    """One trace (one interaction) as an OTLP/JSON ExportTraceServiceRequest body, and when
    its root span ends."""
    trace_id = rng.randbytes(16).hex()
    root_id = rng.randbytes(8).hex()
    agent = rng.choice(AGENTS)
    provider, model = rng.choice(PROVIDERS)
    t = start
    spans: list[dict[str, Any]] = []
    user_msg = {"role": "user", "parts": [{"type": "text", "content": errand.prompt}]}

    def span(name: str, attrs: list[dict[str, Any]], secs: float) -> None:
        nonlocal t
        end = t + timedelta(seconds=secs)
        spans.append(
            {
                "traceId": trace_id,
                "spanId": rng.randbytes(8).hex(),
                "parentSpanId": root_id,
                "name": name,
                "kind": 1 if name.startswith("execute_tool") else 3,
                "startTimeUnixNano": _nanos(t),
                "endTimeUnixNano": _nanos(end),
                "attributes": attrs,
                "status": {},
            }
        )
        t = end

    def chat(output: dict[str, Any]) -> None:
        span(
            f"chat {model}",
            [
                _attr("gen_ai.operation.name", "chat"),
                _attr("gen_ai.provider.name", provider),
                _attr("gen_ai.request.model", model),
                _attr("gen_ai.usage.input_tokens", rng.randrange(600, 2400)),
                _attr("gen_ai.usage.output_tokens", rng.randrange(20, 120)),
                _attr("gen_ai.input.messages", orjson.dumps([user_msg]).decode()),
                _attr("gen_ai.output.messages", orjson.dumps([output]).decode()),
            ],
            rng.uniform(0.6, 3.0),
        )

    for act in errand.acts:
        tool, args, result = _tool_call(act.kind, act)
        call_id = f"call_{rng.randbytes(12).hex()}"
        chat(
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": call_id, "name": tool, "arguments": args}],
                "finish_reason": "tool_call",
            }
        )
        span(
            f"execute_tool {tool}",
            [
                _attr("gen_ai.operation.name", "execute_tool"),
                _attr("gen_ai.tool.name", tool),
                _attr("gen_ai.tool.call.id", call_id),
                _attr("gen_ai.tool.call.arguments", orjson.dumps(args).decode()),
                _attr("gen_ai.tool.call.result", result),
            ],
            rng.uniform(0.2, 2.5),
        )
    chat(
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": errand.outcome}],
            "finish_reason": "stop",
        }
    )
    root = {
        "traceId": trace_id,
        "spanId": root_id,
        "name": f"invoke_agent {agent}",
        "kind": 1,
        "startTimeUnixNano": _nanos(start),
        "endTimeUnixNano": _nanos(t),
        "attributes": [
            _attr("gen_ai.operation.name", "invoke_agent"),
            _attr("gen_ai.agent.name", agent),
            _attr("gen_ai.provider.name", provider),
            _attr("gen_ai.request.model", model),
        ],
        "status": {},
    }
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [_attr("service.name", agent), _attr("enduser.id", account_id)]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "tracewatch.eval.render_otlp"},
                        "spans": [root, *spans],
                    }
                ],
            }
        ]
    }
    return body, t
