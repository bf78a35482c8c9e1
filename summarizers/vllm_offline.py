"""vLLM in-process for GPU batch jobs: same prompts, same schema, no server.

Two ways in, one contract. `summarize_many` hands a batch to a `vllm.LLM` engine in this
process (continuous batching). The Ray engine instead sends `conversation` and `sampling` rows
through Ray Data's vLLM engine processor on GPU workers and turns each answer back with
`result`. Both build the same prompt and read the answer with the same code. Needs the
`[vllm]` extra and a machine vLLM supports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import orjson

from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.base import AnswerRejected, Summarizer, SummarizerError
from tracewatch.summarizers.llm_common import compose, parse_output
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.prompt import INSTRUCTIONS, PROMPT_VERSION, output_schema, user_message
from tracewatch.summarizers.redaction import Redactor


def _import_vllm() -> Any:
    # vLLM logs to stdout by default (its engine process too, which inherits this), and our
    # stdout carries --json: send its log to stderr unless the user chose otherwise.
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    try:
        import vllm
        import vllm.sampling_params  # a lazy submodule until something imports it
    except ImportError as exc:
        raise SummarizerError(
            "the vllm-offline backend needs vLLM: pip install 'tracewatch[vllm]'"
        ) from exc
    return vllm


def _sampling_params(vllm: Any, sampling: dict[str, Any]) -> Any:
    """`sampling` as vLLM's object, across the API change guided_decoding -> structured_outputs."""
    plain = {k: v for k, v in sampling.items() if k != "structured_outputs"}
    params = vllm.sampling_params
    if hasattr(params, "StructuredOutputsParams"):
        structured = params.StructuredOutputsParams(**sampling["structured_outputs"])
        return vllm.SamplingParams(**plain, structured_outputs=structured)
    guided = params.GuidedDecodingParams(**sampling["structured_outputs"])
    return vllm.SamplingParams(**plain, guided_decoding=guided)


class VLLMOfflineSummarizer(Summarizer):
    name = "vllm-offline"
    prompt_version = PROMPT_VERSION
    greedy = True  # every request is sent at temperature 0

    def __init__(
        self,
        redactor: Redactor,
        model: str,
        max_tokens: int = 700,
        budget_tokens: int = 3000,
        engine: Any = None,
        **engine_args: Any,
    ) -> None:
        super().__init__(redactor, model)
        self.max_tokens = max_tokens
        self.budget_tokens = budget_tokens
        self.engine_args = engine_args
        self._engine = engine

    @property
    def engine(self) -> Any:
        """Loaded on first use: the Ray driver and rollup workers hold this backend only for its
        cache key and template rollups, and must not load a model onto a GPU they do not have."""
        if self._engine is None:
            self._engine = _import_vllm().LLM(model=self.model, **self.engine_args)
        return self._engine

    def conversation(self, inter: Interaction) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": user_message(inter, self.redactor, self.budget_tokens)},
        ]

    def sampling(self) -> dict[str, Any]:
        """Greedy, bounded, and held to the summary's JSON schema by the engine."""
        return {
            "temperature": 0,
            "max_tokens": self.max_tokens,
            # The schema as text: on Ray these params travel as Arrow columns, where a dict's
            # integers come back as floats and vLLM's grammar rejects `"maxLength": 500.0`.
            "structured_outputs": {"json": orjson.dumps(output_schema()).decode()},
        }

    def result(
        self, inter: Interaction, text: str | None, tokens_in: int, tokens_out: int
    ) -> Summary | SummarizerError:
        """One engine answer as a Summary, or the reason it is none.

        An answer that used every token it was allowed is taken as cut off: the processor on
        Ray reports token counts but no finish reason, and both paths must decide alike.
        """
        try:
            if tokens_out >= self.max_tokens:
                raise AnswerRejected(f"truncated: the answer hit max_tokens={self.max_tokens}")
            parsed = parse_output(text)
            return compose(
                inter, self.redactor, parsed, self.name, self.model, tokens_in, tokens_out
            )
        except SummarizerError as exc:
            return exc

    async def summarize(self, interaction: Interaction) -> Summary:
        result = (await self.summarize_many([interaction]))[0]
        if isinstance(result, SummarizerError):
            raise result
        return result

    async def summarize_many(
        self, interactions: Sequence[Interaction], concurrency: int = 8
    ) -> list[Summary | SummarizerError]:
        params = _sampling_params(_import_vllm(), self.sampling())
        outputs = self.engine.chat(
            [self.conversation(i) for i in interactions], params, use_tqdm=False
        )
        return [
            self.result(
                inter,
                out.outputs[0].text,
                len(out.prompt_token_ids or []),
                len(out.outputs[0].token_ids or []),
            )
            for inter, out in zip(interactions, outputs, strict=True)
        ]

    async def check(self) -> None:
        _import_vllm()

    async def release(self) -> None:
        """The in-process engine belongs to no event loop: it stays up between stages."""

    async def aclose(self) -> None:
        """Stop the engine's worker process now rather than at interpreter exit."""
        core = getattr(getattr(self._engine, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
