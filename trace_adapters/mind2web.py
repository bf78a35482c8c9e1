"""Mind2Web task records (`confirmed_task`, `action_reprs`): human web demonstrations.

Each record is one interaction. An action repr reads "[role] element name -> OP: value" with
OP one of CLICK, TYPE, SELECT (and HOVER/ENTER in some splits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, StepKind
from tracewatch.trace_adapters.base import Adapter, AdapterError, ParsedTrace, StepBuilder

_REPR = re.compile(
    r"^\[(?P<role>[^\]]*)\]\s*(?P<name>.*?)\s*->\s*(?P<op>[A-Z_]+)(?::\s*(?P<value>.*))?$", re.S
)


class Mind2WebAdapter(Adapter):
    name = "mind2web"
    description = "Mind2Web task records (confirmed_task + action_reprs), one interaction each"
    versions = "Mind2Web processed task records"

    def detect(self, doc: Any) -> bool:
        records = doc if isinstance(doc, list) else [doc]
        return bool(records) and all(
            isinstance(r, dict) and "action_reprs" in r and "confirmed_task" in r for r in records
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        for n, rec in enumerate(doc if isinstance(doc, list) else [doc]):
            b = StepBuilder()
            b.message(Actor.user, rec["confirmed_task"])
            site = rec.get("website")
            for i, rep in enumerate(rec["action_reprs"] or []):
                m = _REPR.match(str(rep))
                if not m:
                    raise AdapterError(f"records[{n}].action_reprs[{i}]: unreadable action {rep!r}")
                op = m.group("op").lower()
                value = m.group("value")
                b.add(
                    Actor.agent,
                    StepKind.computer_action,
                    tool_name="browser",
                    action="type" if op == "type" else op,
                    arguments={
                        "element_role": m.group("role").strip(),
                        "element": m.group("name").strip(),
                        **({"value": value} if value else {}),
                    },
                    text=value if op in ("type", "select") else None,
                    target_app=site,
                )
            yield ParsedTrace(
                steps=b.steps,
                agent="mind2web-human",
                native_id=rec.get("annotation_id") or rec.get("id"),
                metadata={k: rec[k] for k in ("website", "domain", "subdomain") if k in rec},
            )
