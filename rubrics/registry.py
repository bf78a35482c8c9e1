"""The judges, by name: the one extension point for adding a judge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracewatch.summarizers.base import Summarizer

JUDGES: dict[str, str] = {
    "signals": "the rubric's deterministic signals on the aggregate's facets; no model",
    "llm": "the summarizer backend's model reads the rubric, signals and fenced aggregate",
    "cascade": "signals screen every aggregate; the model judges only those near or over the "
    "threshold, and single-interaction rubrics with risk cues",
}


def create_judge(kind: str, backend: Summarizer) -> Any:
    from tracewatch.rubrics.cascade_judge import CascadeJudge
    from tracewatch.rubrics.llm_judge import LLMJudge
    from tracewatch.rubrics.signal_judge import SignalJudge

    makers: dict[str, Callable[[], Any]] = {
        "signals": SignalJudge,
        "llm": lambda: LLMJudge(backend),
        "cascade": lambda: CascadeJudge(backend),
    }
    if kind not in makers:
        raise ValueError(f"unknown judge {kind!r}; use one of {', '.join(JUDGES)}")
    if kind in ("llm", "cascade") and backend.name == "embedded":
        raise ValueError(
            f"--judge {kind} needs a model: pass --summarizer vllm or anthropic (the embedded "
            "backend judges with --judge signals)"
        )
    return makers[kind]()
