"""The default backend: deterministic, no model, no GPU, no key, no network.

Facets come from the canonical steps (summarizers/facets.py) and the text from a template, so
the whole monitor runs anywhere and the same input always gives the same summary. Text inside
the trace is only ever counted, fingerprinted and quoted after redaction; no instruction in it
can change what is extracted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tracewatch.monitor.models import Interaction
from tracewatch.monitor.processes import MIN_ITEMS, WorkerPool, chunks, worker_count
from tracewatch.summarizers.base import FAILURES, Summarizer, SummarizerError, as_failure
from tracewatch.summarizers.budget import within_budget
from tracewatch.summarizers.facets import extract, template_text
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.secrets import scoped

_worker: EmbeddedSummarizer | None = None


def _set_worker(redactor: Redactor, model: str) -> None:
    global _worker
    _worker = EmbeddedSummarizer(redactor, model)


def _summarize_chunk(part: list[Interaction]) -> list[Summary | SummarizerError]:
    """In a worker: what `Summarizer.summarize_many` gives for these, failures in place."""
    assert _worker is not None, "worker process not initialised"
    out: list[Summary | SummarizerError] = []
    for inter in part:
        try:
            out.append(_worker.summarize_sync(inter))
        except FAILURES as exc:
            out.append(as_failure(exc))
    return out


class EmbeddedSummarizer(Summarizer):
    name = "embedded"
    prompt_version = "embedded-v6"  # v6: texts cut to a budget, linear patterns

    _pool: WorkerPool | None = None

    async def summarize(self, interaction: Interaction) -> Summary:
        return self.summarize_sync(interaction)

    async def summarize_many(
        self, interactions: Sequence[Interaction], concurrency: int = 8
    ) -> list[Summary | SummarizerError]:
        """On every core once the batch is large enough to pay for the workers; the same
        summaries, in the same order, as one process makes."""
        workers = worker_count() if self.processes else 1
        if workers < 2 or len(interactions) < MIN_ITEMS:
            return await super().summarize_many(interactions, concurrency)
        if self._pool is None:
            self._pool = WorkerPool(
                workers,
                _set_worker,
                (self.redactor, self.model),
            )
        loop = asyncio.get_running_loop()
        pool = self._pool
        parts = await asyncio.gather(
            *(
                asyncio.wrap_future(pool.submit(_summarize_chunk, part), loop=loop)
                for part in chunks(interactions)
            )
        )
        return [r for part in parts for r in part]

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def summarize_sync(self, interaction: Interaction, found: set[str] | None = None) -> Summary:
        """`found`: the interaction's secrets (`secrets.collect`), if the caller has them."""
        budgeted = within_budget(interaction)
        # its secrets, collected once (again only if the budget cut its texts)
        redactor = scoped(self.redactor, budgeted, found if budgeted is interaction else None)
        interaction = budgeted
        facets = extract(interaction, redactor)
        return Summary(
            content_hash=interaction.content_hash,
            backend=self.name,
            model=self.model,
            prompt_version=self.prompt_version,
            text=template_text(interaction, facets, redactor),
            facets=facets,
        )
