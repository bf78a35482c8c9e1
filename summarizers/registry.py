"""The one registry of summary backends, chosen by `--summarizer NAME`."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from tracewatch.summarizers.base import Summarizer
from tracewatch.summarizers.embedded import EmbeddedSummarizer
from tracewatch.summarizers.redaction import Redactor

Factory = Callable[[Redactor, dict[str, Any]], Summarizer]
_REGISTRY: dict[str, tuple[str, Factory]] = {}


def register(name: str, description: str, factory: Factory) -> None:
    if name in _REGISTRY:
        raise ValueError(f"summarizer {name!r} is already registered")
    _REGISTRY[name] = (description, factory)


def names() -> dict[str, str]:
    return {name: desc for name, (desc, _) in _REGISTRY.items()}


def create(name: str, redactor: Redactor, options: dict[str, Any] | None = None) -> Summarizer:
    if name not in _REGISTRY:
        raise ValueError(f"unknown summarizer {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name][1](redactor, options or {})


register(
    "embedded",
    "deterministic facets and a templated summary; no GPU, key or network (default)",
    lambda redactor, opts: EmbeddedSummarizer(redactor, model=opts.get("model") or "rules-v1"),
)


def _vllm(redactor: Redactor, opts: dict[str, Any]) -> Summarizer:
    from tracewatch.summarizers.vllm_backend import DEFAULT_URL, VLLMSummarizer

    model = opts.get("model")
    if not model:
        raise ValueError("the vllm summarizer needs --model (the name vLLM serves)")
    return VLLMSummarizer(
        redactor, model, base_url=opts.get("vllm_url") or DEFAULT_URL, timeout_s=_timeout()
    )


def _timeout() -> float:
    """Seconds one request may take ($TRACEWATCH_VLLM_TIMEOUT): a model on CPU needs more than
    a GPU's default, and a timed-out request is asked again, which costs the work twice."""
    raw = os.environ.get("TRACEWATCH_VLLM_TIMEOUT", "60")
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"TRACEWATCH_VLLM_TIMEOUT={raw!r}: give seconds, above 0")
    return value


def _anthropic(redactor: Redactor, opts: dict[str, Any]) -> Summarizer:
    from tracewatch.summarizers.anthropic_backend import DEFAULT_MODEL, AnthropicSummarizer

    return AnthropicSummarizer(redactor, opts.get("model") or DEFAULT_MODEL)


def _vllm_offline(redactor: Redactor, opts: dict[str, Any]) -> Summarizer:
    from tracewatch.summarizers.vllm_offline import VLLMOfflineSummarizer

    model = opts.get("model")
    if not model:
        raise ValueError("the vllm-offline summarizer needs --model (a local path or HF name)")
    return VLLMOfflineSummarizer(redactor, model, **(opts.get("engine_args") or {}))


register("vllm", "a model served by vLLM's OpenAI-compatible API (--vllm-url, --model)", _vllm)
register(
    "vllm-offline",
    "a vLLM engine in this process, or on GPU workers with --engine ray (--model, "
    "--vllm-engine-args)",
    _vllm_offline,
)
register("anthropic", "the Anthropic API (ANTHROPIC_API_KEY)", _anthropic)
