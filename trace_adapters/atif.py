"""ATIF, Harbor's Agent Trajectory Interchange Format (RFC 0001, v1.0 to v1.8).

`{"schema_version": "ATIF-v1.x", "session_id", "agent": {name, version, model_name},
"steps": [...], "final_metrics"}`. A step is a system prompt, a user message or a whole
agent turn: its `message`, `reasoning_content`, `tool_calls` (`tool_call_id`,
`function_name`, `arguments`) and an `observation` whose `results` answer the calls by
`source_call_id`. Later versions let a message be a list of content parts; both are read.
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

_SOURCES = {"system": Actor.system, "user": Actor.user, "agent": Actor.agent}


class ATIFAdapter(Adapter):
    name = "atif"
    description = "ATIF (Harbor's Agent Trajectory Interchange Format) trajectories"
    versions = "ATIF-v1.0 to v1.8 (schema_version, session_id, agent, steps, final_metrics)"

    def detect(self, doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and isinstance(doc.get("steps"), list)
            and "session_id" in doc
            and (str(doc.get("schema_version", "")).upper().startswith(("ATIF", "1.")))
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
            raise AdapterError("expected an ATIF trajectory with 'steps'")
        b = StepBuilder()
        agent = doc.get("agent") if isinstance(doc.get("agent"), dict) else {}
        model = agent.get("model_name")
        for i, st in enumerate(doc["steps"]):
            if not isinstance(st, dict):
                raise AdapterError(f"steps[{i}]: expected an object")
            actor = _SOURCES.get(str(st.get("source")))
            if actor is None:
                raise AdapterError(f"steps[{i}].source: expected system, user or agent")
            ts = ts_from_iso(st.get("timestamp"))
            model = model or st.get("model_name")
            if st.get("reasoning_content"):
                b.message(
                    Actor.agent, str(st["reasoning_content"]), action="thinking", timestamp=ts
                )
            message = st.get("message")
            text = message if isinstance(message, str) else text_of(message)
            if text:
                b.message(actor, text, timestamp=ts)
            for call in st.get("tool_calls") or []:
                if not isinstance(call, dict):
                    continue
                found: list[Attachment] = []
                name = str(call.get("function_name") or "tool")
                args = as_arguments(call.get("arguments"), found)
                url = (args or {}).get("url")
                b.add(
                    Actor.agent,
                    StepKind.tool_call,
                    tool_name=name,
                    call_id=call.get("tool_call_id"),
                    action=name,
                    arguments=args,
                    target_url=url if isinstance(url, str) else None,
                    attachments=found,
                    timestamp=ts,
                )
            obs = st.get("observation") if isinstance(st.get("observation"), dict) else {}
            for res in obs.get("results") or []:
                if not isinstance(res, dict):
                    continue
                content = res.get("content")
                content = content if isinstance(content, str) else text_of(content)
                if res.get("source_call_id") and b._pending_call(res["source_call_id"]):
                    b.result(res["source_call_id"], short(content, 16000), timestamp=ts)
                else:
                    b.add(Actor.environment, StepKind.observation, text=content, timestamp=ts)
        if not b.steps:
            raise AdapterError("the trajectory holds no message, call or observation")
        start, end = span(b.steps)
        meta: dict[str, Any] = {"schema_version": doc.get("schema_version")}
        if isinstance(doc.get("final_metrics"), dict):
            meta["final_metrics"] = {
                k: v for k, v in doc["final_metrics"].items() if isinstance(v, (int, float))
            }
        yield ParsedTrace(
            steps=b.steps,
            started_at=start,
            ended_at=end,
            agent=agent.get("name"),
            model=model,
            native_id=str(doc.get("session_id")) if doc.get("session_id") else None,
            metadata=meta,
        )
