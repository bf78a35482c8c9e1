"""The cascade: the signals judge screens every aggregate; the model judges only what it
screens in.

Most aggregates are ordinary accounts far below any threshold, and a model's tokens spent on
them buy nothing. The signals judge scores every one (no model, no tokens). An aggregate goes
on to the LLM judge only if:
- its signal score is at or above a screening floor (a share of the rubric's threshold, so a
  calibrated threshold moves the floor with it), or
- the rubric is one a single interaction shows and the aggregate carries risk cues.

Otherwise the signals verdict stands. Every verdict's `stage` says which judge decided it,
and its rationale says why the model was or was not asked.
"""

from __future__ import annotations

from tracewatch.monitor.aggregates import Aggregate
from tracewatch.rubrics.llm_judge import LLMJudge
from tracewatch.rubrics.models import Rubric, Verdict
from tracewatch.rubrics.signal_judge import SignalJudge
from tracewatch.rubrics.verdicts import verdict_id
from tracewatch.summarizers.base import Summarizer

DEFAULT_FLOOR = 0.5  # screen in at half the threshold: the model sees the near misses too


class CascadeJudge:
    name = "cascade"

    def __init__(self, backend: Summarizer, floor: float = DEFAULT_FLOOR) -> None:
        if not 0 <= floor <= 1:
            raise ValueError(f"screening floor {floor} must be between 0 and 1")
        self.signals = SignalJudge()
        self.llm = LLMJudge(backend)
        self.floor = floor
        self.model = f"{self.signals.model}+{self.llm.model}@{floor:g}"

    def screens_in(self, agg: Aggregate, rubric: Rubric, screened: Verdict) -> str | None:
        """Why the model should judge this one, or None."""
        if screened.score >= self.floor * screened.threshold:
            return (
                f"signal score {screened.score:.2f} >= floor {self.floor * screened.threshold:.2f}"
            )
        if rubric.level == "interaction" and agg.facets.risk_cues:
            return f"risk cues: {', '.join(sorted(agg.facets.risk_cues))}"
        return None

    async def ajudge(
        self, agg: Aggregate, rubric: Rubric, threshold: float, threshold_source: str
    ) -> Verdict:
        screened = self.signals.judge(agg, rubric, threshold, threshold_source)
        why = self.screens_in(agg, rubric, screened)
        if why is None:
            verdict = screened
            verdict.stage = "signals"
            verdict.rationale = (
                f"[cascade: decided by signals, below the screening floor "
                f"{self.floor * threshold:.2f}] {verdict.rationale}"
            )
        else:
            verdict = await self.llm.ajudge(agg, rubric, threshold, threshold_source)
            verdict.stage = "llm"
            verdict.rationale = f"[cascade: screened in by {why}] {verdict.rationale}"
        verdict.judge = self.name
        verdict.model = self.model
        verdict.verdict_id = verdict_id(agg.aggregate_id, rubric.id, self.name)
        return verdict
