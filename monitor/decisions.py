"""What reviewers' decisions say about each rubric: its precision, and where to put its bar.

A closed case is a labelled example the deployment paid for: actioned means the rubric was
right, dismissed (reviewed, no action) that it was not. Per rubric, the share actioned is its
precision on this deployment's traffic, and the scores of actioned and dismissed cases say
where a threshold would have kept the actioned ones and dropped the dismissed ones. These are
suggestions for a person to weigh (few decisions say little, and only flagged cases are ever
decided, so nothing here can lower a threshold below where cases were opened).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tracewatch.monitor.store import Store
from tracewatch.rubrics.loader import threshold_for
from tracewatch.rubrics.models import Calibration, Rubric

MIN_DECISIONS = 5


class RubricPrecision(BaseModel):
    rubric: str
    actioned: int
    dismissed: int
    precision: float | None = Field(description="actioned / decided")


class ThresholdSuggestion(BaseModel):
    rubric: str
    threshold: float
    threshold_source: str
    decided: int
    actioned: int
    precision: float | None
    suggested: float | None = Field(description="None: too few decisions, or no change needed")
    precision_at_suggested: float | None = None
    actioned_kept: int | None = None
    reason: str


def _decided(store: Store) -> dict[str, list[tuple[float, bool]]]:
    """Per rubric, (score, actioned) of every closed case."""
    out: dict[str, list[tuple[float, bool]]] = {}
    if not store.con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cases'"
    ).fetchone()[0]:
        return out
    for rubric, score, status in store.con.execute(
        "SELECT rubric_id, score, status FROM cases WHERE status IN ('actioned', 'dismissed')"
        " ORDER BY rubric_id, score"
    ).fetchall():
        out.setdefault(rubric, []).append((float(score), status == "actioned"))
    return out


def rubric_precision(store: Store) -> list[RubricPrecision]:
    rows = []
    for rubric, cases in sorted(_decided(store).items()):
        actioned = sum(1 for _, a in cases if a)
        rows.append(
            RubricPrecision(
                rubric=rubric,
                actioned=actioned,
                dismissed=len(cases) - actioned,
                precision=round(actioned / len(cases), 3) if cases else None,
            )
        )
    return rows


def suggest_thresholds(
    store: Store,
    rubrics: list[Rubric],
    calibrations: list[Calibration],
    judge: str = "signals",
    target_precision: float = 0.9,
) -> list[ThresholdSuggestion]:
    """Per rubric with decisions: the lowest score bar at which the decided cases above it
    reach the target precision, keeping as many actioned cases as that allows."""
    by_id = {r.id: r for r in rubrics}
    out = []
    for rubric_id, cases in sorted(_decided(store).items()):
        rubric = by_id.get(rubric_id)
        if rubric is None:
            continue
        t, src = threshold_for(rubric, judge, calibrations)
        actioned = sum(1 for _, a in cases if a)
        precision = actioned / len(cases) if cases else None
        base = ThresholdSuggestion(
            rubric=rubric_id,
            threshold=t,
            threshold_source=src,
            decided=len(cases),
            actioned=actioned,
            precision=round(precision, 3) if precision is not None else None,
            suggested=None,
            reason="",
        )
        if len(cases) < MIN_DECISIONS:
            base.reason = f"fewer than {MIN_DECISIONS} decisions"
        elif precision is not None and precision >= target_precision:
            base.reason = f"precision already at or above {target_precision:g}"
        else:
            best = None
            for bar in sorted({s for s, _ in cases}):
                above = [a for s, a in cases if s >= bar]
                if above and sum(above) / len(above) >= target_precision and sum(above) > 0:
                    best = (bar, sum(above) / len(above), sum(above))
                    break
            if best is None:
                base.reason = "no score bar reaches the target: the rubric's signals, not its bar"
            else:
                bar, p, kept = best
                # halfway between the last dismissed score below the bar and the bar itself
                below = [s for s, a in cases if s < bar]
                base.suggested = round((max(below) + bar) / 2 if below else bar, 4)
                base.precision_at_suggested = round(p, 3)
                base.actioned_kept = kept
                base.reason = f"raise the bar to reach precision {target_precision:g}"
        out.append(base)
    return out
