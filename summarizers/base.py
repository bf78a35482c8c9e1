"""The one interface every summary backend implements."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.rollup_prompt import (
    ROLLUP_PROMPT_VERSION,
    RollupRequest,
    RollupText,
    template_text,
)


class SummarizerError(RuntimeError):
    """A summary could not be produced; recorded as a failure with this message, never faked."""


class AnswerRejected(SummarizerError):
    """The model answered, but the answer was cut off or did not fit the schema.

    Unlike a timeout or an HTTP error, asking again cannot help a backend that decodes
    greedily: the same prompt gets the same answer. Such failures are settled (not asked
    again under the same cache key) unless the user asks for a retry.
    """


# What summarizing one interaction may raise and still be that interaction's failure (kept
# in its place, recorded with its reason) rather than the run's.
FAILURES = (SummarizerError, TimeoutError, ValueError)


def as_failure(exc: BaseException) -> SummarizerError:
    """One of FAILURES as the SummarizerError kept in a summary's place."""
    if isinstance(exc, SummarizerError):
        return exc
    return SummarizerError(f"{type(exc).__name__}: {exc}")


class Summarizer(ABC):
    """Turns one interaction into a redacted Summary.

    `model` and `prompt_version` are part of the cache key: change either and every
    interaction is summarized again, because the old summaries no longer describe what this
    backend would say.
    """

    name: ClassVar[str]
    prompt_version: ClassVar[str]
    rollup_prompt_version: ClassVar[str] = ROLLUP_PROMPT_VERSION
    # temperature 0: an answer rejected once is rejected again (see AnswerRejected)
    greedy: ClassVar[bool] = False
    # May it start worker processes (the embedded backend, for large batches)? Only where the
    # caller owns the process's life, as the CLI does: a process that is killed (a Ray worker
    # at shutdown) would leave its pool's processes behind.
    processes: bool = False

    def __init__(self, redactor: Redactor, model: str) -> None:
        self.redactor = redactor
        self.model = model

    @abstractmethod
    async def summarize(self, interaction: Interaction) -> Summary: ...

    async def summarize_many(
        self, interactions: Sequence[Interaction], concurrency: int = 8
    ) -> list[Summary | SummarizerError]:
        """Summaries in input order; a failure is returned in place, never raised.

        Backends that batch natively (the in-process vLLM engine) override this.
        """
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(inter: Interaction) -> Summary | SummarizerError:
            async with sem:
                try:
                    return await self.summarize(inter)
                except FAILURES as exc:
                    return as_failure(exc)

        return list(await asyncio.gather(*(one(i) for i in interactions)))

    async def summarize_rollup(self, request: RollupRequest) -> RollupText:
        """Text over a chunk of member summaries; the default writes the signals as sentences.

        LLM backends override this with a model call over the fenced member summaries.
        """
        return RollupText(text=self.redactor.redact(template_text(request)) or "")

    async def structured(
        self, system: str, user: str, schema: dict[str, Any], name: str
    ) -> tuple[dict[str, Any], int, int]:
        """One answer as a JSON object matching `schema`, with tokens in and out.

        What the model judge calls; backends without a model cannot answer.
        """
        raise SummarizerError(
            f"the {self.name} backend has no model to judge with; use --judge signals, or "
            "--summarizer vllm / anthropic with --judge llm"
        )

    def rollup_overhead_tokens(self) -> int:
        """Tokens of the fixed rollup prompt; zero for a backend that sends no prompt."""
        return 0

    async def check(self) -> None:  # noqa: B027 - nothing to check for local backends
        """Fail fast, before a run, when the backend cannot work at all (no server, no key)."""

    async def release(self) -> None:
        """Let go of what is bound to the running event loop (pooled connections), at the
        end of one `asyncio.run`; the backend stays usable in the next one."""
        await self.aclose()

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release clients and connections."""
