"""Making verdicts: stable ids, and the fields every judge fills the same way.

A verdict's id is stable so that a re-run replaces it instead of adding a second one. What
identifies the aggregate, rubric and judge is copied here once, so the judges only decide the
score, the rationale and the evidence.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tracewatch.monitor.aggregates import Aggregate
from tracewatch.rubrics.models import Rubric, Verdict


def verdict_id(aggregate_id: str, rubric_id: str, judge: str) -> str:
    raw = "\x1f".join((aggregate_id, rubric_id, judge)).encode()
    return "v-" + hashlib.blake2b(raw, digest_size=10).hexdigest()


def new_verdict(
    agg: Aggregate,
    rubric: Rubric,
    judge: str,
    model: str,
    threshold: float,
    threshold_source: str,
    **decision: Any,
) -> Verdict:
    """A verdict on `agg` under `rubric`; `decision` holds what the judge decided (score,
    flagged, confidence, rationale, evidence, quotes, signals, reach, accounts, tokens)."""
    return Verdict(
        verdict_id=verdict_id(agg.aggregate_id, rubric.id, judge),
        aggregate_id=agg.aggregate_id,
        aggregate_kind=agg.kind,
        input_hash=agg.input_hash,
        subject=agg.subject,
        window=agg.window,
        window_start=agg.window_start,
        window_end=agg.window_end,
        rubric_id=rubric.id,
        rubric_version=rubric.version,
        severity=rubric.severity,
        judge=judge,
        model=model,
        threshold=threshold,
        threshold_source=threshold_source,  # type: ignore[arg-type]
        **decision,
    )
