"""AgentDojo run files: one JSON per (pipeline, suite, user task, attack, injection task).

The messages are Chat-shaped with AgentDojo's normalised calls (`{function, args, id}`); the
run's labels (`utility`, `security`, attack and injection task) go to metadata, where the eval
harness reads them as ground truth for the per-interaction rubrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracewatch.trace_adapters.base import Adapter, AdapterError, ParsedTrace, StepBuilder
from tracewatch.trace_adapters.openai_chat import add_chat_message

LABEL_KEYS = (
    "suite_name",
    "pipeline_name",
    "user_task_id",
    "injection_task_id",
    "attack_type",
    "utility",
    "security",
    "duration",
    "error",
)


class AgentDojoAdapter(Adapter):
    name = "agentdojo"
    description = "AgentDojo benchmark run files (messages + utility/security labels)"
    versions = "AgentDojo run files (v1 and v1.2 benchmarks)"

    def detect(self, doc: Any) -> bool:
        return (
            isinstance(doc, dict)
            and isinstance(doc.get("messages"), list)
            and "suite_name" in doc
            and ("user_task_id" in doc or "pipeline_name" in doc)
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        b = StepBuilder()
        for i, msg in enumerate(doc["messages"]):
            add_chat_message(b, msg, f"messages[{i}]")
        if not b.steps:
            raise AdapterError("messages: the run has no messages")
        meta: dict[str, Any] = {k: doc.get(k) for k in LABEL_KEYS if k in doc}
        if doc.get("injections"):
            meta["injection_slots"] = sorted(doc["injections"])
        native = "/".join(
            str(doc.get(k))
            for k in ("pipeline_name", "suite_name", "user_task_id", "injection_task_id")
        )
        yield ParsedTrace(
            steps=b.steps,
            model=doc.get("pipeline_name"),
            agent="agentdojo",
            native_id=native,
            metadata=meta,
        )
