"""The Anthropic API through the official SDK.

Structured output is a forced tool call whose input schema is the summary schema; the fixed
instructions carry `cache_control` so prompt caching serves them across requests. The SDK
retries 429, 5xx and overloaded answers with backoff (honouring retry-after); what still fails
becomes a recorded failure. The key is read from ANTHROPIC_API_KEY.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.base import AnswerRejected, Summarizer, SummarizerError
from tracewatch.summarizers.llm_common import (
    PerLoopClient,
    compose,
    load_json,
    parse_output,
    rollup_text,
)
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.prompt import INSTRUCTIONS, PROMPT_VERSION, output_schema, user_message
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.rollup_prompt import (
    ROLLUP_INSTRUCTIONS,
    RollupRequest,
    RollupText,
    overhead_tokens,
    rollup_output_schema,
    rollup_user_message,
)

TOOL_NAME = "record_summary"
ROLLUP_TOOL = "record_rollup"
DEFAULT_MODEL = "claude-haiku-4-5"


class AnthropicSummarizer(Summarizer):
    name = "anthropic"
    prompt_version = PROMPT_VERSION

    def __init__(
        self,
        redactor: Redactor,
        model: str = DEFAULT_MODEL,
        max_tokens: int = 700,
        budget_tokens: int = 3000,
        retries: int = 3,
        timeout_s: float = 60.0,
        api_key: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
    ) -> None:
        super().__init__(redactor, model)
        try:
            import anthropic
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SummarizerError(
                "the anthropic backend needs the SDK: pip install 'tracewatch[anthropic]'"
            ) from exc
        self._anthropic = anthropic
        self.max_tokens = max_tokens
        self.budget_tokens = budget_tokens
        try:
            extra = {"http_client": http_client} if http_client is not None else {}
            self._clients = PerLoopClient(
                lambda: anthropic.AsyncAnthropic(
                    api_key=api_key, base_url=base_url, max_retries=retries, timeout=timeout_s,
                    **extra,
                ),
                fixed=http_client is not None,
            )  # fmt: skip
        except anthropic.AnthropicError as exc:
            raise SummarizerError(f"cannot create the Anthropic client: {exc}") from None

    def params(self, inter: Interaction) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [
                {"type": "text", "text": INSTRUCTIONS, "cache_control": {"type": "ephemeral"}}
            ],
            "tools": [
                {
                    "name": TOOL_NAME,
                    "description": "Record the session summary.",
                    "input_schema": output_schema(),
                }
            ],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
            "messages": [
                {"role": "user", "content": user_message(inter, self.redactor, self.budget_tokens)}
            ],
        }

    def _tool_input(self, message: Any, tool: str) -> dict[str, Any] | None:
        """The forced tool call's input; a cut-off or tool-less answer is a failure."""
        if getattr(message, "stop_reason", None) == "max_tokens":
            raise AnswerRejected(f"truncated: the answer hit max_tokens={self.max_tokens}")
        block = next(
            (
                b
                for b in message.content
                if getattr(b, "type", None) == "tool_use" and b.name == tool
            ),
            None,
        )
        if block is None:
            raise AnswerRejected(f"invalid output: the model did not call {tool}")
        return block.input if isinstance(block.input, dict) else None

    def _from_message(self, inter: Interaction, message: Any) -> Summary:
        out = parse_output(self._tool_input(message, TOOL_NAME))
        usage = message.usage
        tokens_in = (usage.input_tokens or 0) + (getattr(usage, "cache_read_input_tokens", 0) or 0)
        return compose(
            inter, self.redactor, out, self.name, self.model, tokens_in, usage.output_tokens or 0
        )

    async def summarize(self, interaction: Interaction) -> Summary:
        return self._from_message(interaction, await self._create(self.params(interaction)))

    def rollup_overhead_tokens(self) -> int:
        return overhead_tokens()

    async def summarize_rollup(self, request: RollupRequest) -> RollupText:
        params = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [
                {
                    "type": "text",
                    "text": ROLLUP_INSTRUCTIONS,
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "tools": [
                {
                    "name": ROLLUP_TOOL,
                    "description": "Record the summary of these sessions.",
                    "input_schema": rollup_output_schema(),
                }
            ],
            "tool_choice": {"type": "tool", "name": ROLLUP_TOOL},
            "messages": [{"role": "user", "content": rollup_user_message(request)}],
        }
        message = await self._create(params)
        return rollup_text(self.redactor, self._tool_input(message, ROLLUP_TOOL), message.usage)

    async def structured(
        self, system: str, user: str, schema: dict[str, Any], name: str
    ) -> tuple[dict[str, Any], int, int]:
        params = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": name, "description": "Record the answer.", "input_schema": schema}],
            "tool_choice": {"type": "tool", "name": name},
            "messages": [{"role": "user", "content": user}],
        }
        message = await self._create(params)
        usage = message.usage
        tokens_in = (usage.input_tokens or 0) + (getattr(usage, "cache_read_input_tokens", 0) or 0)
        return load_json(self._tool_input(message, name)), tokens_in, usage.output_tokens or 0

    async def _create(self, params: dict[str, Any]) -> Any:
        anthropic = self._anthropic
        try:
            return await self.client.messages.create(**params)
        except anthropic.APIStatusError as exc:
            raise SummarizerError(f"Anthropic API answered HTTP {exc.status_code}") from None
        except anthropic.APITimeoutError:
            raise SummarizerError("Anthropic API timed out") from None
        except anthropic.APIConnectionError:
            raise SummarizerError("cannot reach the Anthropic API") from None

    async def summarize_batch(
        self, interactions: Sequence[Interaction], poll_s: float = 30.0
    ) -> list[Summary | SummarizerError]:
        """The Message Batches API: half the price, results within 24 h, for batch runs."""
        by_id = {f"i{n}": inter for n, inter in enumerate(interactions)}
        batch = await self.client.messages.batches.create(
            requests=[
                {"custom_id": cid, "params": self.params(inter)} for cid, inter in by_id.items()
            ]
        )
        while batch.processing_status != "ended":
            await asyncio.sleep(poll_s)
            batch = await self.client.messages.batches.retrieve(batch.id)
        results: dict[str, Summary | SummarizerError] = {}
        async for entry in await self.client.messages.batches.results(batch.id):
            inter = by_id[entry.custom_id]
            if entry.result.type == "succeeded":
                try:
                    results[entry.custom_id] = self._from_message(inter, entry.result.message)
                except SummarizerError as exc:
                    results[entry.custom_id] = exc
            else:
                results[entry.custom_id] = SummarizerError(f"batch request {entry.result.type}")
        return [results.get(cid, SummarizerError("missing from batch results")) for cid in by_id]

    @property
    def client(self) -> Any:
        return self._clients.get()

    async def aclose(self) -> None:
        await self._clients.aclose()
