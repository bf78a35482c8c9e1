"""Anthropic, OpenAI and OTel wire formats, built from their specs.

No public recorded transcripts of these exist (see shared/reference/trace-formats.md).
"""

from __future__ import annotations

import base64

import pytest

from tracewatch.monitor.models import Actor, StepKind
from tracewatch.trace_adapters import AdapterError, detect, get
from tracewatch.trace_adapters.anthropic_messages import COMPUTER_ACTIONS

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).decode()

ACTION_INPUTS = {
    "key": {"text": "ctrl+l"},
    "type": {"text": "https://shop.example/cart"},
    "mouse_move": {"coordinate": [1, 2]},
    "left_click": {"coordinate": [10, 20]},
    "left_click_drag": {"start_coordinate": [1, 1], "coordinate": [5, 5]},
    "right_click": {"coordinate": [3, 3]},
    "middle_click": {"coordinate": [3, 3]},
    "double_click": {"coordinate": [3, 3]},
    "screenshot": {},
    "cursor_position": {},
    "left_mouse_down": {},
    "left_mouse_up": {},
    "scroll": {"coordinate": [5, 5], "scroll_direction": "down", "scroll_amount": 3},
    "hold_key": {"text": "shift", "duration": 1},
    "wait": {"duration": 2},
    "triple_click": {"coordinate": [3, 3]},
    "zoom": {"region": [0, 0, 100, 100]},
}


def anthropic_body() -> dict:
    msgs: list[dict] = [{"role": "user", "content": "Buy the cart"}]
    for i, action in enumerate(sorted(ACTION_INPUTS)):
        msgs.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": f"step {i}", "signature": "x"},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{i:02d}",
                        "name": "computer",
                        "input": {"action": action, **ACTION_INPUTS[action]},
                    },
                ],
            }
        )
    # results arrive in reverse order: pairing must be by id, not position
    msgs.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": f"toolu_{i:02d}",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        }
                    ]
                    if i == 0
                    else f"done {i}",
                }
                for i in reversed(range(len(ACTION_INPUTS)))
            ],
        }
    )
    msgs.append(
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_bash",
                    "name": "bash",
                    "input": {"command": "ls /tmp"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_ed",
                    "name": "str_replace_based_edit_tool",
                    "input": {"command": "view", "path": "/etc/hosts"},
                },
            ],
        }
    )
    msgs.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_ed",
                    "content": "127.0.0.1 localhost",
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_bash",
                    "content": "permission denied",
                    "is_error": True,
                },
            ],
        }
    )
    return {
        "model": "claude-sonnet-4-5",
        "system": "You drive a browser.",
        "tools": [
            {
                "type": "computer_20251124",
                "name": "computer",
                "display_width_px": 1280,
                "display_height_px": 800,
            },
            {"type": "bash_20250124", "name": "bash"},
        ],
        "messages": msgs,
    }


def test_anthropic_every_computer_action_and_pairing_by_id() -> None:
    body = anthropic_body()
    assert set(ACTION_INPUTS) == COMPUTER_ACTIONS
    adapter = detect(body)
    assert adapter.name == "anthropic"
    t = next(adapter.parse(body))
    actions = [s for s in t.steps if s.kind == StepKind.computer_action]
    assert {a.action for a in actions} == COMPUTER_ACTIONS
    for i, a in enumerate(actions):
        assert a.call_id == f"toolu_{i:02d}"
        assert a.result == (None if i == 0 else f"done {i}")
    assert actions[0].attachments[0].media_type == "image/png"
    typed = next(a for a in actions if a.action == "type")
    assert typed.text == "https://shop.example/cart" and typed.target_domain == "shop.example"
    bash = next(s for s in t.steps if s.tool_name == "bash")
    assert bash.text == "ls /tmp" and bash.is_error and bash.result == "permission denied"
    editor = next(s for s in t.steps if s.tool_name == "str_replace_based_edit_tool")
    assert editor.action == "view" and editor.target_app == "/etc/hosts"
    assert t.steps[0].actor == Actor.system
    assert any(s.action == "thinking" for s in t.steps)
    assert t.metadata["tool_versions"] == ["computer_20251124", "bash_20250124"]


def test_anthropic_computer_call_without_action_is_an_error() -> None:
    body = {
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t",
                        "name": "computer",
                        "input": {"coordinate": [1, 2]},
                    }
                ],
            }
        ]
    }
    with pytest.raises(AdapterError, match=r"messages\[0\]\.content\[0\]\.input\.action"):
        list(get("anthropic").parse(body))


def test_openai_responses_computer_calls() -> None:
    body = {
        "model": "computer-use-preview",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Book it"}],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "open site"}],
            },
            {
                "type": "computer_call",
                "id": "cu_1",
                "call_id": "call_1",
                "action": {"type": "click", "button": "left", "x": 10, "y": 20},
                "pending_safety_checks": [
                    {"id": "s", "code": "malicious_instructions", "message": "m"}
                ],
                "status": "completed",
            },
            {
                "type": "computer_call",
                "id": "cu_2",
                "call_id": "call_2",
                "actions": [
                    {"type": "type", "text": "hello@example.com"},
                    {"type": "keypress", "keys": ["ENTER"]},
                ],
                "status": "completed",
            },
            {
                "type": "computer_call_output",
                "call_id": "call_2",
                "output": {
                    "type": "computer_screenshot",
                    "image_url": f"data:image/png;base64,{PNG}",
                },
                "current_url": "https://tickets.example/confirm",
            },
            {
                "type": "computer_call_output",
                "call_id": "call_1",
                "output": {
                    "type": "input_image",
                    "image_url": f"data:image/png;base64,{PNG}",
                    "current_url": "https://tickets.example/",
                },
            },
            {"type": "function_call", "call_id": "fc", "name": "lookup", "arguments": '{"q": 1}'},
            {"type": "function_call_output", "call_id": "fc", "output": "found"},
        ],
    }
    adapter = detect(body)
    assert adapter.name == "openai_responses"
    t = next(adapter.parse(body))
    acts = [s for s in t.steps if s.kind == StepKind.computer_action]
    assert [a.action for a in acts] == ["click", "type", "keypress"]
    assert acts[0].target_domain == "tickets.example" and acts[0].attachments
    assert acts[0].arguments["pending_safety_checks"] == ["malicious_instructions"]
    assert acts[1].text == "hello@example.com" and acts[1].call_id is None
    assert acts[2].call_id == "call_2" and acts[2].target_url == "https://tickets.example/confirm"
    fc = next(s for s in t.steps if s.tool_name == "lookup")
    assert fc.arguments == {"q": 1} and fc.result == "found"
    assert t.steps[1].action == "reasoning"


def test_openai_chat_completion_object_and_orphan_result() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": [{"type": "text", "text": "open it"}]},
            {"role": "tool", "tool_call_id": "missing", "content": "late result"},
        ],
        "response": {
            "object": "chat.completion",
            "id": "chatcmpl-1",
            "model": "gpt-4o",
            "created": 1700000000,
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {
                                    "name": "navigate",
                                    "arguments": '{"url": "https://a.example/x"}',
                                },
                            }
                        ],
                    }
                }
            ],
        },
    }
    adapter = detect(body)
    assert adapter.name == "openai_chat"
    t = next(adapter.parse(body))
    orphan = next(s for s in t.steps if s.kind == StepKind.tool_result)
    assert orphan.result == "late result" and orphan.call_id == "missing"
    nav = next(s for s in t.steps if s.kind == StepKind.navigation)
    assert nav.target_domain == "a.example" and t.model == "gpt-4o" and t.native_id == "chatcmpl-1"
    assert t.started_at.year == 2023


def test_otel_genai_agent_trace_with_tools_across_spans() -> None:
    def attr(k: str, v: object) -> dict:
        return {
            "key": k,
            "value": {"stringValue": v} if isinstance(v, str) else {"intValue": str(v)},
        }

    trace_id = "0af7651916cd43dd8448eb211c80319c"
    spans = [
        {
            "traceId": trace_id,
            "spanId": "a1",
            "name": "invoke_agent shopper",
            "startTimeUnixNano": "1000",
            "endTimeUnixNano": "9000",
            "attributes": [
                attr("gen_ai.operation.name", "invoke_agent"),
                attr("gen_ai.agent.name", "shopper"),
                attr("enduser.id", "cust-7"),
            ],
        },
        {
            "traceId": trace_id,
            "spanId": "c1",
            "parentSpanId": "a1",
            "name": "chat gpt-4o",
            "startTimeUnixNano": "2000",
            "attributes": [
                attr("gen_ai.operation.name", "chat"),
                attr("gen_ai.request.model", "gpt-4o"),
                attr("gen_ai.system", "openai"),
                attr("gen_ai.usage.input_tokens", 50),
                attr(
                    "gen_ai.input.messages",
                    '[{"role":"user","parts":[{"type":"text","content":"buy socks"}]}]',
                ),
                attr(
                    "gen_ai.output.messages",
                    '[{"role":"assistant","parts":[{"type":"tool_call","id":"t1","name":"add_to_cart","arguments":{"sku":"S1"}}]}]',
                ),
            ],
        },
        {
            "traceId": trace_id,
            "spanId": "e1",
            "parentSpanId": "a1",
            "name": "execute_tool add_to_cart",
            "startTimeUnixNano": "3000",
            "status": {"code": 2, "message": "out of stock"},
            "attributes": [
                attr("gen_ai.operation.name", "execute_tool"),
                attr("gen_ai.tool.call.id", "t1"),
                attr("gen_ai.tool.name", "add_to_cart"),
            ],
        },
        {
            "traceId": trace_id,
            "spanId": "c2",
            "parentSpanId": "a1",
            "name": "chat gpt-4o",
            "startTimeUnixNano": "4000",
            "attributes": [
                attr("gen_ai.operation.name", "chat"),
                # the whole history again: only new messages may become steps
                attr(
                    "gen_ai.input.messages",
                    '[{"role":"user","parts":[{"type":"text","content":"buy socks"}]}]',
                ),
                attr(
                    "gen_ai.output.messages",
                    '[{"role":"assistant","parts":[{"type":"text","content":"Sorry, sold out."}]}]',
                ),
            ],
        },
    ]
    # spans arrive in two requests, out of order
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", "shop-agent")]},
                "scopeSpans": [{"spans": [spans[3], spans[1]]}, {"spans": [spans[2], spans[0]]}],
            }
        ]
    }
    t = next(detect(doc).parse(doc))
    assert [s.text for s in t.steps if s.kind == StepKind.message] == [
        "buy socks",
        "Sorry, sold out.",
    ]
    call = next(s for s in t.steps if s.kind == StepKind.tool_call)
    assert call.tool_name == "add_to_cart" and call.arguments == {"sku": "S1"}
    assert call.is_error and "out of stock" in call.result
    assert t.account_hint == "cust-7" and t.agent == "shopper" and t.model == "gpt-4o"
    assert t.metadata["provider"] == "openai" and t.metadata["usage"]["input_tokens"] == 50
