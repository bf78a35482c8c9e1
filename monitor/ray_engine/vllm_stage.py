"""Summaries from vLLM engines on GPU workers, through Ray Data's LLM processor.

`ray.data.llm` runs the chat template, tokenizer and one vLLM engine per worker (continuous
batching, on the GPUs Ray schedules it to); tracewatch only says what to ask and reads the
answers. Both ends are the `vllm-offline` backend's own methods, so a summary made here is
the one `tracewatch run --summarizer vllm-offline` makes in one process:

- before: `conversation` (the fenced, redacted prompt) and `sampling` (greedy, the summary's
  JSON schema, max_tokens);
- after: `result` (the answer validated and composed with the deterministic facets), then
  `write_results` into the same day-partitioned Parquet parts as every other backend.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pyarrow as pa

from tracewatch.monitor.models import Interaction
from tracewatch.monitor.ray_engine.layout import Layout
from tracewatch.monitor.ray_engine.stages import BackendSpec, Batch, write_results
from tracewatch.summarizers.base import SummarizerError
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.vllm_offline import VLLMOfflineSummarizer

LIGHT_CPUS = 0.25
# What the processor holds per engine worker: the engine's CPU and its three light stages.
CPUS_PER_ENGINE = 1 + 3 * LIGHT_CPUS


@lru_cache(maxsize=4)
def _backend(spec_json: str) -> VLLMOfflineSummarizer:
    """The backend without its engine (loaded only on first use, never here): a worker
    process builds it once per spec for its prompt and its parser."""
    backend = BackendSpec.model_validate_json(spec_json).create()
    if not isinstance(backend, VLLMOfflineSummarizer):
        raise TypeError(f"the vLLM engine stage needs vllm-offline, not {backend.name}")
    return backend


def ask(row: dict[str, Any], spec_json: str) -> dict[str, Any]:
    backend = _backend(spec_json)
    inter = Interaction.model_validate_json(row["payload"])
    return {"messages": backend.conversation(inter), "sampling_params": backend.sampling()}


def answer(row: dict[str, Any], spec_json: str) -> dict[str, Any]:
    backend = _backend(spec_json)
    inter = Interaction.model_validate_json(row["payload"])
    res = backend.result(
        inter,
        row.get("generated_text"),
        int(row.get("num_input_tokens") or 0),
        int(row.get("num_generated_tokens") or 0),
    )
    return {
        "content_hash": inter.content_hash,
        "day": str(row["day"]),
        "summary": res.model_dump_json() if isinstance(res, Summary) else None,
        "error": None if isinstance(res, Summary) else str(res) or type(res).__name__,
    }


def settle(row: dict[str, Any]) -> dict[str, Any]:
    """One shape for every row: a request the engine failed skips `answer` and comes back
    whole with its `__inference_error__`, which becomes that content's recorded failure."""
    if row.get("__inference_error__"):
        return {
            "content_hash": str(row["content_hash"]),
            "day": str(row["day"]),
            "summary": None,
            "error": f"engine error: {row['__inference_error__']}",
        }
    return {k: row[k] for k in ("content_hash", "day", "summary", "error")}


def write_answers(batch: pa.Table, layout: Layout, folder: str) -> Batch:
    """`map_batches` in pyarrow format, where a missing summary stays None (not NaN)."""
    rows = batch.to_pylist()
    results: list[Summary | SummarizerError] = [
        Summary.model_validate_json(r["summary"])
        if r["summary"] is not None
        else SummarizerError(r["error"])
        for r in rows
    ]
    return write_results(
        layout, folder, [r["content_hash"] for r in rows], [r["day"] for r in rows], results
    )


def engine_processor(
    spec: BackendSpec, workers: int, batch_size: int, device: str, accelerator: str | None
) -> Any:
    """A Ray Data processor: `workers` vLLM engines, one GPU each (or tensor_parallel_size),
    or on CPUs with vLLM's CPU build when `device` is cpu (what the tests run)."""
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    if not spec.model:
        raise ValueError("the vllm-offline summarizer needs --model (a local path or HF name)")
    spec_json = spec.model_dump_json()
    config = vLLMEngineProcessorConfig(
        model_source=spec.model,
        engine_kwargs=dict(spec.engine_args),
        batch_size=batch_size,
        concurrency=workers,
        accelerator_type=accelerator,
        placement_group_config={"bundles": [{"CPU": 1}]} if device == "cpu" else None,
        # A failed request (say, a prompt longer than max_model_len) becomes that row's
        # recorded failure instead of ending the job.
        should_continue_on_error=True,
        # Engine metrics go to Ray's Prometheus exporter, which needs ray[serve].
        log_engine_metrics=False,
        # Templating and tokenizing a ~1k-token prompt is light next to the engine: a
        # quarter CPU each, so they never hold the CPUs the shuffle and the engines need.
        chat_template_stage={"num_cpus": LIGHT_CPUS},
        tokenize_stage={"num_cpus": LIGHT_CPUS},
        detokenize_stage={"num_cpus": LIGHT_CPUS},
    )
    return build_processor(
        config,
        preprocess=lambda row: ask(row, spec_json),
        postprocess=lambda row: answer(row, spec_json),
    )
