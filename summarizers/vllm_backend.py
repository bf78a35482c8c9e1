"""A local model served by vLLM, through its OpenAI-compatible API.

Structured output uses vLLM's JSON-schema guided decoding (`response_format` json_schema), so
an answer that completes always fits the schema; one cut off at max_tokens or otherwise
invalid becomes a recorded failure with its reason. Requests are bounded in concurrency by the
caller, each has a timeout, and 429/5xx/timeouts are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import random
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

DEFAULT_URL = "http://127.0.0.1:8000/v1"


class VLLMSummarizer(Summarizer):
    name = "vllm"
    prompt_version = PROMPT_VERSION
    greedy = True  # every request is sent at temperature 0

    def __init__(
        self,
        redactor: Redactor,
        model: str,
        base_url: str = DEFAULT_URL,
        timeout_s: float = 60.0,
        retries: int = 3,
        max_tokens: int = 700,
        budget_tokens: int = 3000,
        api_key: str = "EMPTY",
        http_client: Any = None,
    ) -> None:
        super().__init__(redactor, model)
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise SummarizerError(
                "the vllm backend needs the openai client: pip install 'tracewatch[vllm]'"
            ) from exc
        self._openai = openai
        self.base_url = base_url
        self.retries = retries
        self.max_tokens = max_tokens
        self.budget_tokens = budget_tokens
        # Retries are ours (bounded, recorded as failures); http_client lets a deployment add
        # proxies or TLS settings, and tests a recorded transport.
        extra = {"http_client": http_client} if http_client is not None else {}
        self._client_args = {
            "base_url": base_url, "api_key": api_key, "timeout": timeout_s, "max_retries": 0
        }  # fmt: skip
        self._clients = PerLoopClient(
            lambda: openai.AsyncOpenAI(**self._client_args, **extra), fixed=http_client is not None
        )
        self._schema = output_schema()

    def request(self, inter: Interaction) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": user_message(inter, self.redactor, self.budget_tokens)},
            ],
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "interaction_summary", "schema": self._schema},
            },
        }

    async def summarize(self, interaction: Interaction) -> Summary:
        resp = await self._complete(self.request(interaction))
        out = parse_output(self._content(resp))
        usage = resp.usage
        return compose(
            interaction,
            self.redactor,
            out,
            self.name,
            self.model,
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
        )

    def rollup_overhead_tokens(self) -> int:
        return overhead_tokens()

    async def summarize_rollup(self, request: RollupRequest) -> RollupText:
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": ROLLUP_INSTRUCTIONS},
                {"role": "user", "content": rollup_user_message(request)},
            ],
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "rollup_summary", "schema": rollup_output_schema()},
            },
        }
        resp = await self._complete(body)
        return rollup_text(self.redactor, self._content(resp), resp.usage)

    async def structured(
        self, system: str, user: str, schema: dict[str, Any], name: str
    ) -> tuple[dict[str, Any], int, int]:
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema},
            },
        }
        resp = await self._complete(body)
        usage = resp.usage
        return (
            load_json(self._content(resp)),
            usage.prompt_tokens if usage else 0,
            usage.completion_tokens if usage else 0,
        )

    def _content(self, resp: Any) -> str | None:
        """The answer's text; a missing or cut-off answer is a failure, never parsed."""
        choice = resp.choices[0] if resp.choices else None
        if choice is None:
            raise AnswerRejected("invalid output: no choices in the answer")
        if choice.finish_reason == "length":
            raise AnswerRejected(f"truncated: the answer hit max_tokens={self.max_tokens}")
        return choice.message.content

    async def _complete(self, body: dict[str, Any]) -> Any:
        openai = self._openai
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                resp = await self.client.chat.completions.create(**body)
                break
            except openai.APIConnectionError as exc:
                if isinstance(exc, openai.APITimeoutError) and attempt < self.retries:
                    await asyncio.sleep(delay * (1 + random.random()))
                    delay *= 2
                    continue
                if isinstance(exc, openai.APITimeoutError):
                    raise SummarizerError(f"timed out after {self.retries + 1} attempts") from None
                raise SummarizerError(
                    f"no vLLM server answering at {self.base_url} (start one with "
                    f"`vllm serve {self.model}`, or pass --vllm-url)"
                ) from None
            except openai.APIStatusError as exc:
                retryable = exc.status_code == 429 or exc.status_code >= 500
                if retryable and attempt < self.retries:
                    await asyncio.sleep(delay * (1 + random.random()))
                    delay *= 2
                    continue
                raise SummarizerError(f"vLLM answered HTTP {exc.status_code}") from None
        return resp

    async def check(self) -> None:
        """The server answers and serves this model; otherwise one clear error, not N failures."""
        openai = self._openai
        try:
            served = [m.id async for m in self.client.models.list()]
        except openai.APIConnectionError:
            raise SummarizerError(
                f"no vLLM server answering at {self.base_url} (start one with "
                f"`vllm serve {self.model}`, or pass --vllm-url)"
            ) from None
        except openai.APIStatusError as exc:
            raise SummarizerError(
                f"{self.base_url}/models answered HTTP {exc.status_code}; is this a vLLM server?"
            ) from None
        if served and self.model not in served:
            raise SummarizerError(
                f"the vLLM server at {self.base_url} serves {', '.join(served)}, not {self.model!r}"
            )

    @property
    def client(self) -> Any:
        return self._clients.get()

    async def aclose(self) -> None:
        await self._clients.aclose()
