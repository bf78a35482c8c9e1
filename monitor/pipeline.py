"""The main job as one library call: ingest, summarize, roll up, judge, queue.

`tracewatch run` and `tracewatch eval` both call this, so what is measured is what ships.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracewatch.monitor.ingest import IngestOptions, ingest
from tracewatch.monitor.judge import Judge, JudgeOptions, JudgeReport, run_judge
from tracewatch.monitor.rollup import RollupOptions, RollupReport, run_rollup
from tracewatch.monitor.store import Store
from tracewatch.monitor.summarize import summarize_store
from tracewatch.rubrics.models import Calibration, Rubric
from tracewatch.summarizers.base import Summarizer


class PipelineReport(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    ingest: dict[str, Any]
    summarize: dict[str, Any]
    rollup: RollupReport
    judge: JudgeReport
    seconds: dict[str, float] = Field(default_factory=dict)


async def run_pipeline(
    paths: list[str],
    store: Store,
    backend: Summarizer,
    judge: Judge,
    ingest_options: IngestOptions | None = None,
    rollup_options: RollupOptions | None = None,
    judge_options: JudgeOptions | None = None,
    concurrency: int = 8,
    rubrics: list[Rubric] | None = None,
    calibrations: list[Calibration] | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
    on_rollup: Callable[[str, int, int], None] = lambda event, units, members: None,
) -> PipelineReport:
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    on_stage("ingest")
    ing = ingest(paths, store, ingest_options or IngestOptions())
    seconds["ingest"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    on_stage("summarize")
    summ = await summarize_store(store, backend, concurrency)
    seconds["summarize"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    on_stage("rollup")
    roll = await run_rollup(
        store, backend, rollup_options or RollupOptions(), on_progress=on_rollup
    )
    seconds["rollup"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    on_stage("judge")
    opts = judge_options or JudgeOptions()
    opts = opts.model_copy(update={"backend": backend.name, "model": backend.model})
    jr = await run_judge(store, judge, opts, rubrics, calibrations)
    seconds["judge"] = round(time.perf_counter() - t, 2)
    return PipelineReport(
        ingest=ing.as_dict(), summarize=summ.as_dict(), rollup=roll, judge=jr, seconds=seconds
    )
