"""The driver of a Ray run: stages in order, each skipping what an earlier run finished.

1. adapt    one Ray task per input file not yet adapted          -> interactions/
2. summarize the content hashes with no summary yet, once each     -> summaries/<backend>/day=
3. rollup   group by account shard; `run_rollup` without campaigns -> aggregates/<backend>/
4. write    on the driver, the one DuckDB writer: interactions and rejects (`write_batch`),
            summaries, aggregates; then the campaign step (`run_rollup`, whose window and
            period aggregates are already current), the judge and the queue (`run_judge`).

Ray retries a failed task; a rerun after a crash finds the files of every finished input,
summary batch and shard and does only the rest.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from tracewatch.monitor.ingest import IngestOptions, IngestReport, store_batch
from tracewatch.monitor.judge import Judge, JudgeOptions, JudgeReport, run_judge
from tracewatch.monitor.models import Interaction
from tracewatch.monitor.ray_engine.inputs import InputFile, find_inputs
from tracewatch.monitor.ray_engine.layout import Layout
from tracewatch.monitor.ray_engine.stages import (
    INGEST_META,
    BackendSpec,
    RollupShard,
    SummarizeBatch,
    adapt_files,
    aggregates_from,
    first_of_content,
    merge_counts,
    read_summaries,
    shard_of,
    summaries_from,
)
from tracewatch.monitor.ray_engine.vllm_stage import CPUS_PER_ENGINE
from tracewatch.monitor.rollup import RollupOptions, RollupReport, run_rollup
from tracewatch.monitor.rollup_store import RollupStore, SummaryKey
from tracewatch.monitor.store import Rejected, Store
from tracewatch.monitor.summarize import SummarizeReport
from tracewatch.rubrics.models import Calibration, Rubric
from tracewatch.summarizers.base import Summarizer


class RayOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: str = Field(description="folder or object-store URI for the stages' Parquet files")
    address: str | None = Field(None, description="Ray cluster; None starts a local one")
    workers: int = Field(2, ge=1, description="parallel workers per stage (and local CPUs)")
    shards: int = Field(16, ge=1, description="account shards of the rollup stage")
    batch_size: int = Field(64, ge=1, description="interactions per summarize task")
    vllm_device: Literal["gpu", "cpu"] = Field(
        "gpu", description="where vllm-offline's engines run: GPUs, or CPUs with vLLM's CPU build"
    )
    accelerator_type: str | None = Field(
        None, description="with vllm-offline: only GPUs of this Ray accelerator type (H100...)"
    )
    progress: bool = True


class RayRunReport(BaseModel):
    engine: dict[str, Any]
    ingest: dict[str, Any]
    summarize: dict[str, Any]
    rollup: RollupReport
    judge: JudgeReport
    reused: dict[str, int]
    seconds: dict[str, float]


def _start(options: RayOptions, engines: bool) -> bool:
    """Connect to the cluster, or start a local Ray; True when this call started it.

    `engines`: the summarize stage runs vLLM engines, each with its light CPU stages.
    """
    import ray

    if ray.is_initialized():
        return False
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    if options.address:
        ray.init(address=options.address, **common)
    else:
        # One CPU beyond the workers' for Ray Data's own reading and shuffling tasks: with
        # every CPU held by the worker actors, the shuffle feeding them could never run.
        cpus = options.workers + 1
        if engines:
            cpus += math.ceil(options.workers * CPUS_PER_ENGINE)
        ray.init(num_cpus=cpus, include_dashboard=False, **common)
    return True


def _adapt(
    inputs: list[InputFile], layout: Layout, opts: IngestOptions, workers: int
) -> tuple[list[dict[str, Any]], int]:
    import ray

    todo = [i for i in inputs if not layout.exists(layout.interactions(i.key))]
    if todo:
        (
            ray.data.from_items([i.model_dump() for i in todo], override_num_blocks=len(todo))
            .map_batches(
                adapt_files,
                batch_size=1,
                fn_kwargs={"layout": layout, "opts": opts},
                compute=ray.data.TaskPoolStrategy(size=workers),
            )
            .materialize()
        )
    reports = [layout.metadata(layout.interactions(i.key), INGEST_META) for i in inputs]
    return reports, len(inputs) - len(todo)


def _summarize(
    files: list[str], layout: Layout, spec: BackendSpec, backend: Summarizer, opts: RayOptions
) -> tuple[SummarizeReport, list[tuple[str, str, str, str, str]]]:
    import ray

    fs, _ = layout.fs_root
    folder = spec.storage_key(backend)
    report = SummarizeReport(backend.name, backend.model, backend.prompt_version)
    stored = read_summaries(layout, folder, columns=["content_hash"])
    done = np.array(stored.column("content_hash").to_pylist(), dtype=object)
    hashes: set[str] = set()
    for f in files:
        t = layout.read(f, ["kind", "content_hash"])
        kinds, found = (c.to_pylist() for c in t.columns)
        hashes.update(h for k, h in zip(kinds, found, strict=True) if k == "interaction")
    report.to_do = len(hashes - set(done.tolist()))
    report.cached = len(hashes) - report.to_do
    if not report.to_do:
        return report, []

    def pending(batch: dict[str, Any]) -> dict[str, Any]:
        keep = (batch["kind"] == "interaction") & ~np.isin(batch["content_hash"], done)
        return {k: v[keep] for k, v in batch.items()}

    firsts = (
        ray.data.read_parquet(
            files,
            filesystem=fs,
            columns=["kind", "content_hash", "interaction_id", "day", "payload"],
        )
        .map_batches(pending)
        .groupby("content_hash", num_partitions=opts.workers * 2)
        .map_groups(first_of_content)
    )
    if spec.name == "vllm-offline":
        # The engines live in Ray Data's vLLM processor on GPU workers; the rollup stage and
        # this driver hold the same backend without ever loading its model.
        from tracewatch.monitor.ray_engine.vllm_stage import (
            engine_processor,
            settle,
            write_answers,
        )

        processor = engine_processor(
            spec, opts.workers, opts.batch_size, opts.vllm_device, opts.accelerator_type
        )
        done_ds = (
            processor(firsts)
            .map(settle)
            .map_batches(
                write_answers,
                batch_size=opts.batch_size,
                batch_format="pyarrow",
                fn_kwargs={"layout": layout, "folder": folder},
            )
        )
    else:
        done_ds = firsts.map_batches(
            SummarizeBatch,
            batch_size=opts.batch_size,
            fn_constructor_kwargs={"spec": spec, "layout": layout},
            compute=ray.data.ActorPoolStrategy(size=opts.workers),
        )
    rows = done_ds.take_all()
    failures = []
    for r in rows:
        if r["error"] is None:
            report.summarized += 1
            report.tokens_in += int(r["tokens_in"])
            report.tokens_out += int(r["tokens_out"])
        else:
            report.failed += 1
            report.failures_by_reason[r["error"]] += 1
            failures.append(
                (
                    r["content_hash"],
                    backend.name,
                    backend.model,
                    backend.prompt_version,
                    r["error"],
                    False,  # the worker sends the reason only: asked again next time
                )
            )
    return report, failures


def _rollup(
    files: list[str],
    order: dict[str, int],
    layout: Layout,
    spec: BackendSpec,
    options: RollupOptions,
    opts: RayOptions,
) -> list[dict[str, Any]]:
    import ray

    fs, _ = layout.fs_root
    columns = [
        "kind",
        "seq",
        "interaction_id",
        "account_id",
        "content_hash",
        "source_file",
        "line",
        "payload",
    ]

    def interactions(batch: dict[str, Any]) -> dict[str, Any]:
        keep = batch["kind"] == "interaction"
        return shard_of({k: v[keep] for k, v in batch.items()}, opts.shards)

    return (
        ray.data.read_parquet(files, filesystem=fs, columns=columns, include_paths=True)
        .map_batches(interactions)
        .groupby("shard", num_partitions=opts.workers * 2)
        .map_groups(
            RollupShard,
            fn_constructor_kwargs={
                "spec": spec,
                "layout": layout,
                "options": options,
                "order": order,
            },
            compute=ray.data.ActorPoolStrategy(size=opts.workers),
        )
        .take_all()
    )


def _write_interactions(
    store: Store, inputs: list[InputFile], layout: Layout, report: IngestReport
) -> None:
    """Through `ingest.store_batch`, input by input in order, as `ingest` would have."""
    for item in inputs:
        rows = layout.read(layout.interactions(item.key)).to_pylist()
        for start in range(0, len(rows), 500):
            batch: list[tuple[Interaction, str | None, int | None]] = []
            rejected: list[Rejected] = []
            for r in rows[start : start + 500]:
                if r["kind"] == "interaction":
                    inter = Interaction.model_validate_json(r["payload"])
                    batch.append((inter, r["source_file"], r["line"]))
                else:
                    fields = ("source_file", "line", "adapter", "reason", "error", "raw")
                    rejected.append(Rejected(*(r[f] for f in fields)))
            store_batch(store, batch, rejected, report)


def run_on_ray(
    paths: list[str],
    store: Store,
    backend: Summarizer,
    spec: BackendSpec,
    judge: Judge,
    options: RayOptions,
    ingest_options: IngestOptions | None = None,
    rollup_options: RollupOptions | None = None,
    judge_options: JudgeOptions | None = None,
    rubrics: list[Rubric] | None = None,
    calibrations: list[Calibration] | None = None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> RayRunReport:
    """`run_pipeline` on Ray. Raises PathError before any work if an input is unreadable."""
    import ray
    from ray.data import DataContext

    iopts = ingest_options or IngestOptions()
    ropts = rollup_options or RollupOptions()
    inputs, skipped = find_inputs(paths, iopts)
    layout = Layout(options.output)
    # Ray's processes print to the driver's stdout; keep it for our own output (--json).
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    started = False
    seconds: dict[str, float] = {}
    try:
        started = _start(options, spec.name == "vllm-offline")
        DataContext.get_current().enable_progress_bars = options.progress
        t = time.perf_counter()
        on_stage("adapt")
        per_file, inputs_reused = _adapt(inputs, layout, iopts, options.workers)
        files = [layout.interactions(i.key) for i in inputs]
        seconds["adapt"] = round(time.perf_counter() - t, 2)

        t = time.perf_counter()
        on_stage("summarize")
        summ, failures = _summarize(files, layout, spec, backend, options)
        seconds["summarize"] = round(time.perf_counter() - t, 2)

        t = time.perf_counter()
        on_stage("rollup")
        order = {i.key: n for n, i in enumerate(inputs)}
        shards = _rollup(files, order, layout, spec, ropts, options) if files else []
        seconds["rollup"] = round(time.perf_counter() - t, 2)
        resources = ray.cluster_resources()
    finally:
        if started:
            ray.shutdown()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)

    t = time.perf_counter()
    on_stage("write")
    ing = IngestReport(skipped_files=skipped, files=len(inputs))
    for r in per_file:
        ing.bytes += r.get("bytes", 0)
        ing.records += r.get("records", 0)
        ing.interactions += r.get("interactions", 0)
    ing.by_format.update(merge_counts(per_file, "by_format"))
    ing.defaults_used.update(merge_counts(per_file, "defaults_used"))
    ing.format_hint_mismatches.update(merge_counts(per_file, "format_hint_mismatches"))
    ing.quarantined_by_reason.update(merge_counts(per_file, "quarantined_by_reason"))
    _write_interactions(store, inputs, layout, ing)
    folder = spec.storage_key(backend)
    sums = summaries_from(read_summaries(layout, folder))
    for start in range(0, len(sums), 5000):
        store.write_summaries(sums[start : start + 5000])
    store.write_summary_failures(failures)
    rs = RollupStore(
        store,
        SummaryKey(
            backend.name, backend.model, backend.prompt_version, backend.rollup_prompt_version
        ),
    )
    shard_reports = []
    for s in shards:
        aggs = aggregates_from(layout.read(s["shard"]))
        rs.write_aggregates([a for a in aggs if a.kind == "account_window"], features=True)
        rs.write_aggregates([a for a in aggs if a.kind != "account_window"], features=False)
        if not s["reused"]:
            shard_reports.append(orjson.loads(s["report"]))
    seconds["write"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    on_stage("campaigns")
    roll = asyncio.run(run_rollup(store, backend, ropts))
    for field in (
        "windows_rolled",
        "periods_rolled",
        "partials",
        "extra_levels",
        "model_failures",
        "tokens_in",
        "tokens_out",
    ):
        setattr(roll, field, getattr(roll, field) + sum(r.get(field, 0) for r in shard_reports))
    roll.windows_unchanged = sum(r.get("windows_unchanged", 0) for r in shard_reports)
    roll.periods_unchanged = sum(r.get("periods_unchanged", 0) for r in shard_reports)
    seconds["campaigns"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    on_stage("judge")
    jopts = (judge_options or JudgeOptions()).model_copy(
        update={"backend": backend.name, "model": backend.model}
    )
    jr = asyncio.run(run_judge(store, judge, jopts, rubrics, calibrations))
    seconds["judge"] = round(time.perf_counter() - t, 2)
    return RayRunReport(
        engine={
            "engine": "ray",
            "address": options.address or "local",
            "workers": options.workers,
            "output": options.output,
            "cluster": {k: v for k, v in resources.items() if k in ("CPU", "GPU", "memory")},
        },
        ingest=ing.as_dict(),
        summarize=summ.as_dict(),
        rollup=roll,
        judge=jr,
        reused={
            "inputs": inputs_reused,
            "shards": sum(1 for s in shards if s["reused"]),
            "shards_total": len(shards),
        },
        seconds=seconds,
    )
