"""A trace document through the real adapter, as the interaction tests summarize."""

from __future__ import annotations

from typing import Any

from tracewatch.monitor.models import Interaction
from tracewatch.trace_adapters import get


def parsed(fmt: str, doc: Any, interaction_id: str = "x") -> Interaction:
    """The document's first trace, as one interaction of account `a`."""
    t = next(get(fmt).parse(doc))
    return Interaction(
        interaction_id=interaction_id,
        account_id="a",
        source_format=fmt,
        started_at="2026-10-05T10:00:00Z",
        steps=t.steps,
    )
