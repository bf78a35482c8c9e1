"""What the LLM backends share: parsing and repairing answers, and composing the Summary.

The facets that aggregation counts always come from the deterministic extractor; the model
adds the readable text, transactions it saw that the rules missed, and risk cues. A model
answer can therefore add evidence but never erase what the steps show.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from tracewatch.monitor.envelope import describe_validation_error
from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.base import AnswerRejected
from tracewatch.summarizers.facets import extract
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.prompt import PROMPT_VERSION, LLMSummaryOutput
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.rollup_prompt import TEXT_LIMIT, LLMRollupOutput, RollupText

_FENCED_JSON = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.S)


def load_json(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    if raw is None:
        raise AnswerRejected("invalid output: empty answer")
    data: Any = raw
    if isinstance(raw, str):
        text = raw.strip()
        m = _FENCED_JSON.search(text)
        if m:
            text = m.group(1)
        elif not text.startswith("{") and "{" in text and "}" in text:
            text = text[text.index("{") : text.rindex("}") + 1]
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise AnswerRejected(f"invalid output: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AnswerRejected("invalid output: expected a JSON object")
    return data


def parse_output(raw: str | dict[str, Any] | None) -> LLMSummaryOutput:
    """Validate a model answer; repair only what is unambiguous (code fences, prose around JSON)."""
    try:
        return LLMSummaryOutput.model_validate(load_json(raw))
    except ValidationError as exc:
        raise AnswerRejected(f"invalid output: {describe_validation_error(exc)}") from None


def rollup_text(redactor: Redactor, raw: str | dict[str, Any] | None, usage: Any) -> RollupText:
    """A validated rollup answer as text: the summary, then the patterns the model listed."""
    try:
        out = LLMRollupOutput.model_validate(load_json(raw))
    except ValidationError as exc:
        raise AnswerRejected(f"invalid output: {describe_validation_error(exc)}") from None
    text = out.summary.strip()
    if out.patterns:
        text += " Patterns: " + "; ".join(p.strip() for p in out.patterns if p.strip()) + "."
    tokens_in = getattr(usage, "prompt_tokens", None) or getattr(usage, "input_tokens", 0) or 0
    tokens_out = (
        getattr(usage, "completion_tokens", None) or getattr(usage, "output_tokens", 0) or 0
    )
    return RollupText(
        text=(redactor.redact(text) or "")[: TEXT_LIMIT * 2],
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )


def compose(
    inter: Interaction,
    redactor: Redactor,
    out: LLMSummaryOutput,
    backend: str,
    model: str,
    tokens_in: int,
    tokens_out: int,
) -> Summary:
    facets = extract(inter, redactor)
    seen = {(t.kind, t.target) for t in facets.transactions}
    for t in out.transactions:
        if (t.kind, t.target) not in seen:
            facets.transactions.append(t)
            seen.add((t.kind, t.target))
    for cue in out.risk_cues:
        cue = redactor.redact(cue.strip()) or ""
        if cue and cue not in facets.risk_cues:
            facets.risk_cues.append(cue[:200])
    if out.refused and not facets.refusals:
        facets.refusals = 1
    if out.task and not facets.task:
        facets.task = redactor.redact(out.task)
    return Summary(
        content_hash=inter.content_hash,
        backend=backend,
        model=model,
        prompt_version=PROMPT_VERSION,
        text=redactor.redact(out.summary) or "",
        facets=facets,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class PerLoopClient:
    """An SDK's async client for the event loop it is used in.

    The CLI runs the stages of one command (check, summarize, roll up, judge, close) each in
    its own `asyncio.run`; an httpx connection pooled in one loop cannot be used or closed in
    the next ("Event loop is closed"). So a new client is made when the loop changes, and the
    old one, whose loop is gone, is dropped. A client built on a transport the caller gave
    (a proxy, a recorded transport in tests) is the caller's and is kept as it is.
    """

    def __init__(self, make: Callable[[], Any], fixed: bool = False) -> None:
        self._make, self._fixed = make, fixed
        self._client: Any = make()
        self._loop = _running_loop()

    def get(self) -> Any:
        loop = _running_loop()
        if self._client is None or (not self._fixed and loop is not self._loop):
            self._client, self._loop = self._make(), loop
        return self._client

    async def aclose(self) -> None:
        """Close the client of this loop, before the loop ends (its connections can only be
        closed in it); the next use, in any loop, makes a new one."""
        if self._client is not None and (self._fixed or self._loop is _running_loop()):
            await self._client.close()
        if not self._fixed:
            self._client = None
