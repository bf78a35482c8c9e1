"""SWE-agent trajectories (`.traj`), both the 1.x layout and the pre-1.0 one.

1.x files carry a Chat-format `history` with tool_calls and `tool_call_ids`; that history is
read, pairing results by id. Pre-1.0 files have no tool calls in the history; their
`trajectory[]` (action, observation, thought per item) is read instead, with the task taken
from the first non-demonstration user message. Demonstrations are examples shown to the model,
not this session's behaviour, so they are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, StepKind
from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    loads_maybe,
    short,
    text_of,
)
from tracewatch.trace_adapters.openai_chat import add_chat_message


def _is_demo(h: dict[str, Any]) -> bool:
    return bool(h.get("is_demo")) or h.get("message_type") == "demonstration"


class SWEAgentAdapter(Adapter):
    name = "swe_agent"
    description = "SWE-agent .traj trajectories (1.x history with tool_calls, and pre-1.0)"
    versions = "SWE-agent 1.x .traj (history with tool_calls) and pre-1.0"
    extensions = (".traj",)

    def detect(self, doc: Any) -> bool:
        if not isinstance(doc, dict):
            return False
        hist, traj = doc.get("history"), doc.get("trajectory")
        if (
            isinstance(traj, list)
            and traj
            and all(isinstance(t, dict) and "action" in t and "observation" in t for t in traj)
        ):
            return True
        return (
            isinstance(hist, list)
            and bool(hist)
            and all(isinstance(h, dict) and "role" in h for h in hist)
            and any("message_type" in h or "agent" in h for h in hist)
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        hist = [h for h in doc.get("history") or [] if isinstance(h, dict) and not _is_demo(h)]
        traj = doc.get("trajectory") or []
        b = StepBuilder()
        if any(h.get("tool_calls") for h in hist):
            for i, h in enumerate(hist):
                if h.get("role") == "tool":
                    ids = h.get("tool_call_ids") or [h.get("tool_call_id")]
                    for call_id in ids:
                        b.result(call_id, short(text_of(h.get("content")), 16000))
                    continue
                msg = {
                    "role": h.get("role"),
                    "content": h.get("content"),
                    "tool_calls": h.get("tool_calls"),
                }
                add_chat_message(b, msg, f"history[{i}]")
        elif traj:
            for h in hist:
                if h.get("role") == "system":
                    b.message(Actor.system, short(text_of(h.get("content")), 16000))
                elif h.get("role") == "user":
                    b.message(Actor.user, short(text_of(h.get("content")), 16000))
                    break
            for i, t in enumerate(traj):
                if not isinstance(t, dict):
                    raise AdapterError(f"trajectory[{i}]: expected an object")
                if t.get("thought"):
                    b.message(Actor.agent, t["thought"], action="thought")
                command = str(t.get("action") or "").strip()
                if not command:
                    continue
                state = loads_maybe(t.get("state"))
                call_id = f"traj:{i}"
                b.add(
                    Actor.agent,
                    StepKind.tool_call,
                    tool_name="shell",
                    call_id=call_id,
                    action=command.split()[0],
                    text=command,
                    target_app=(state or {}).get("open_file") if isinstance(state, dict) else None,
                    arguments={"command": command},
                )
                b.result(call_id, short(text_of(t.get("observation")), 16000))
        else:
            raise AdapterError("history/trajectory: neither tool calls nor trajectory steps found")
        info = doc.get("info") or {}
        meta = {k: info[k] for k in ("exit_status", "model_stats") if k in info}
        agent_cfg = (doc.get("replay_config") or {}).get("agent") or {}
        model = (
            ((agent_cfg.get("model") or {}).get("name")) if isinstance(agent_cfg, dict) else None
        )
        yield ParsedTrace(
            steps=b.steps,
            agent="swe-agent",
            model=model,
            native_id=agent_cfg.get("name") if isinstance(agent_cfg, dict) else None,
            metadata=meta,
        )
