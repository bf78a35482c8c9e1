"""vLLM in-process (`vllm.LLM`) for GPU batch jobs: same prompts, same schema, no server.

A batch of interactions goes to the engine in one `chat` call, which schedules them together
(continuous batching); structured output is the same JSON schema as the server backend. Needs
the `[vllm]` extra and a machine vLLM supports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.base import Summarizer, SummarizerError
from tracewatch.summarizers.llm_common import compose, parse_output
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.prompt import INSTRUCTIONS, PROMPT_VERSION, output_schema, user_message
from tracewatch.summarizers.redaction import Redactor


def _sampling_params(vllm: Any, schema: dict[str, Any], max_tokens: int) -> Any:
    """Structured-output params across the API change (guided_decoding -> structured_outputs)."""
    params = vllm.sampling_params
    if hasattr(params, "StructuredOutputsParams"):
        return vllm.SamplingParams(
            temperature=0,
            max_tokens=max_tokens,
            structured_outputs=params.StructuredOutputsParams(json=schema),
        )
    return vllm.SamplingParams(
        temperature=0,
        max_tokens=max_tokens,
        guided_decoding=params.GuidedDecodingParams(json=schema),
    )


class VLLMOfflineSummarizer(Summarizer):
    name = "vllm-offline"
    prompt_version = PROMPT_VERSION

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
        try:
            import vllm
        except ImportError as exc:
            raise SummarizerError(
                "the vllm-offline backend needs vLLM: pip install 'tracewatch[vllm]'"
            ) from exc
        self.max_tokens = max_tokens
        self.budget_tokens = budget_tokens
        self.engine = engine or vllm.LLM(model=model, **engine_args)
        self.params = _sampling_params(vllm, output_schema(), max_tokens)

    def conversation(self, inter: Interaction) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": user_message(inter, self.redactor, self.budget_tokens)},
        ]

    async def summarize(self, interaction: Interaction) -> Summary:
        result = (await self.summarize_many([interaction]))[0]
        if isinstance(result, SummarizerError):
            raise result
        return result

    async def summarize_many(
        self, interactions: Sequence[Interaction], concurrency: int = 8
    ) -> list[Summary | SummarizerError]:
        outputs = self.engine.chat(
            [self.conversation(i) for i in interactions], self.params, use_tqdm=False
        )
        results: list[Summary | SummarizerError] = []
        for inter, out in zip(interactions, outputs, strict=True):
            gen = out.outputs[0]
            try:
                if gen.finish_reason == "length":
                    raise SummarizerError(f"truncated: the answer hit max_tokens={self.max_tokens}")
                parsed = parse_output(gen.text)
                results.append(
                    compose(
                        inter,
                        self.redactor,
                        parsed,
                        self.name,
                        self.model,
                        len(out.prompt_token_ids or []),
                        len(gen.token_ids or []),
                    )
                )
            except SummarizerError as exc:
                results.append(exc)
        return results

    async def aclose(self) -> None:
        """Stop the engine's worker process now rather than at interpreter exit."""
        core = getattr(getattr(self.engine, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
