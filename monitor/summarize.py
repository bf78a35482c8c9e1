"""Summarize every stored interaction that has no summary yet under the chosen backend.

Summaries are keyed by (content hash, backend, model, prompt version), so a re-run
summarizes nothing twice and identical content from many accounts is summarized once. A
backend failure is recorded with its reason and the run goes on; nothing is faked. A greedy
model's rejected answer (cut off, off-schema) is settled: a re-run does not pay for the same
answer again unless asked to retry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tracewatch.monitor.store import Store
from tracewatch.summarizers.base import AnswerRejected, Summarizer
from tracewatch.summarizers.models import Summary


@dataclass
class SummarizeReport:
    backend: str
    model: str
    prompt_version: str
    to_do: int = 0
    summarized: int = 0
    cached: int = 0
    failed: int = 0
    settled: int = 0
    failures_by_reason: Counter[str] = field(default_factory=Counter)
    tokens_in: int = 0
    tokens_out: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "summarized": self.summarized,
            "cached": self.cached,
            "failed": self.failed,
            "settled": self.settled,
            "failures_by_reason": dict(self.failures_by_reason),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }


def _reason(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:200] or type(exc).__name__


async def summarize_store(
    store: Store,
    summarizer: Summarizer,
    concurrency: int = 8,
    on_progress: Callable[[int], None] = lambda n: None,
    batch_size: int = 500,
    retry_settled: bool = False,
) -> SummarizeReport:
    key = (summarizer.name, summarizer.model, summarizer.prompt_version)
    report = SummarizeReport(*key)
    total_hashes = store.con.execute(
        "SELECT count(DISTINCT content_hash) FROM interactions"
    ).fetchone()[0]
    unsummarized = store.count_unsummarized(*key)
    report.to_do = (
        unsummarized if retry_settled else store.count_unsummarized(*key, include_settled=False)
    )
    report.settled = unsummarized - report.to_do
    report.cached = total_hashes - unsummarized
    for batch in store.unsummarized(*key, batch_size=batch_size, include_settled=retry_settled):
        results = await summarizer.summarize_many(batch, concurrency)
        done: list[Summary] = []
        failures: list[tuple[str, str, str, str, str, bool]] = []
        for inter, res in zip(batch, results, strict=True):
            if isinstance(res, Summary):
                done.append(res)
                report.tokens_in += res.tokens_in
                report.tokens_out += res.tokens_out
            else:
                reason = _reason(res)
                report.failures_by_reason[reason] += 1
                settled = summarizer.greedy and isinstance(res, AnswerRejected)
                failures.append((inter.content_hash, *key, reason, settled))
        store.write_summaries(done)
        store.write_summary_failures(failures)
        report.summarized += len(done)
        report.failed += len(failures)
        on_progress(len(batch))
    return report
