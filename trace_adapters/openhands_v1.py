"""OpenHands V1 (software-agent-sdk) events: conversations on disk and event lists.

A V1 conversation is a folder with one JSON file per event (`event_service/events/`), read by
ingestion as one document `{"events": [...], "metadata": base_state}`; OpenAgentSafety and
other benchmarks write the same events as one JSON list per file. Every event has a `kind`:
SystemPromptEvent and MessageEvent carry messages, ActionEvent a tool call (`tool_name`,
`tool_call_id`, the typed `action`, the agent's `thought`), ObservationEvent its result (by
`tool_call_id`), AgentErrorEvent and UserRejectObservation a failure.
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
    span,
    text_of,
    ts_from_iso,
)
from tracewatch.trace_adapters.openhands import events_of as _events

V1_KINDS = frozenset(
    {
        "SystemPromptEvent",
        "MessageEvent",
        "ActionEvent",
        "ObservationEvent",
        "AgentErrorEvent",
        "UserRejectObservation",
        "Condensation",
        "CondensationRequest",
        "CondensationSummaryEvent",
        "ConversationStateUpdateEvent",
        "PauseEvent",
    }
)
_ROLE = {"user": Actor.user, "assistant": Actor.agent, "system": Actor.system}


def _parts_text(value: Any) -> str | None:
    if isinstance(value, list):
        texts = [p.get("text") for p in value if isinstance(p, dict) and p.get("text")]
        return "\n".join(texts) or None
    if isinstance(value, dict):
        return value.get("text") or text_of(value.get("content"))
    return value if isinstance(value, str) else None


class OpenHandsV1Adapter(Adapter):
    name = "openhands_v1"
    description = "OpenHands V1 (software-agent-sdk) events: conversation folders and event lists"
    versions = "software-agent-sdk 1.x events (ActionEvent, ObservationEvent, MessageEvent...)"

    def detect(self, doc: Any) -> bool:
        events = _events(doc)
        return (
            bool(events)
            and all(isinstance(e, dict) and "kind" in e for e in events)
            and any(e.get("kind") in V1_KINDS for e in events)
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        events = _events(doc)
        if events is None:
            raise AdapterError("expected a list of OpenHands V1 events")
        b = StepBuilder()
        for i, ev in enumerate(events):
            if not isinstance(ev, dict):
                raise AdapterError(f"events[{i}]: expected an object")
            ts = ts_from_iso(ev.get("timestamp"))
            kind = ev.get("kind")
            if kind == "SystemPromptEvent":
                b.message(Actor.system, _parts_text(ev.get("system_prompt")), timestamp=ts)
            elif kind == "MessageEvent":
                msg = ev.get("llm_message") or {}
                actor = _ROLE.get(str(msg.get("role")), Actor.user)
                b.message(actor, _parts_text(msg.get("content")), timestamp=ts)
            elif kind == "ActionEvent":
                self._action(b, ev, ts)
            elif kind in ("ObservationEvent", "UserRejectObservation"):
                obs = ev.get("observation") if isinstance(ev.get("observation"), dict) else {}
                body = obs.get("output") or obs.get("content") or obs.get("message")
                text = body if isinstance(body, str) else (text_of(body) or "")
                err = obs.get("error") if isinstance(obs.get("error"), str) else None
                if kind == "UserRejectObservation":
                    err = str(ev.get("rejection_reason") or "rejected by the user")
                if err:
                    text = f"{text}\nerror: {err}" if text else f"error: {err}"
                meta = obs.get("metadata") if isinstance(obs.get("metadata"), dict) else {}
                b.result(
                    ev.get("tool_call_id"),
                    short(text, 16000) or "",
                    is_error=bool(err) or bool(meta.get("exit_code")),
                    timestamp=ts,
                )
            elif kind == "AgentErrorEvent":
                b.add(
                    Actor.system,
                    StepKind.observation,
                    text=str(ev.get("error") or "agent error"),
                    is_error=True,
                    timestamp=ts,
                )
        if not b.steps:
            raise AdapterError("the events hold no message, action or observation")
        start, end = span(b.steps)
        meta: dict[str, Any] = {}
        state = doc.get("metadata") if isinstance(doc, dict) else None
        agent = state.get("agent") if isinstance(state, dict) else None
        llm = agent.get("llm") if isinstance(agent, dict) else None
        if isinstance(state, dict) and state.get("id"):
            meta["conversation_id"] = state["id"]
        yield ParsedTrace(
            steps=b.steps,
            started_at=start,
            ended_at=end,
            agent="openhands",
            model=llm.get("model") if isinstance(llm, dict) else None,
            native_id=meta.get("conversation_id"),
            metadata=meta,
        )

    def _action(self, b: StepBuilder, ev: dict[str, Any], ts: Any) -> None:
        thought = _parts_text(ev.get("thought"))
        if thought:
            b.message(Actor.agent, thought, action="thinking", timestamp=ts)
        action = ev.get("action") if isinstance(ev.get("action"), dict) else {}
        args = {k: v for k, v in action.items() if k != "kind"}
        found: list[Attachment] = []
        arguments = as_arguments(args, found)
        tool = ev.get("tool_name") or str(action.get("kind") or "action")
        url = action.get("url") if isinstance(action.get("url"), str) else None
        typed = action.get("text") if isinstance(action.get("text"), str) else None
        if action.get("kind") in ("ThinkAction", "FinishAction"):
            text = action.get("thought") or action.get("message")
            if isinstance(text, str) and text:
                b.message(Actor.agent, text, timestamp=ts)
        b.add(
            Actor.agent,
            StepKind.navigation if url and "navigate" in tool else StepKind.tool_call,
            tool_name=tool,
            call_id=ev.get("tool_call_id"),
            action="type" if typed and "type" in tool else str(action.get("kind") or tool),
            arguments=arguments,
            target_url=url,
            attachments=found,
            timestamp=ts,
        )
