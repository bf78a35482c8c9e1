"""The one registry of trace formats, and format detection.

Detection tries adapters from the most specific shape to the most generic (a Chat message list
matches many things, an Inspect EvalLog only itself), so order here is part of the contract.
"""

from __future__ import annotations

from typing import Any

from tracewatch.trace_adapters.agentdojo import AgentDojoAdapter
from tracewatch.trace_adapters.anthropic_messages import AnthropicMessagesAdapter
from tracewatch.trace_adapters.base import Adapter
from tracewatch.trace_adapters.browser_use import BrowserUseAdapter
from tracewatch.trace_adapters.inspect_ai import InspectAIAdapter
from tracewatch.trace_adapters.mcp import MCPAdapter
from tracewatch.trace_adapters.mind2web import Mind2WebAdapter
from tracewatch.trace_adapters.openai_chat import OpenAIChatAdapter
from tracewatch.trace_adapters.openai_responses import OpenAIResponsesAdapter
from tracewatch.trace_adapters.openhands import OpenHandsAdapter
from tracewatch.trace_adapters.otel_genai import OTelGenAIAdapter
from tracewatch.trace_adapters.swe_agent import SWEAgentAdapter


class DetectionError(ValueError):
    """No adapter recognised the document; the message lists every format tried."""


_REGISTRY: dict[str, Adapter] = {}


def register(adapter: Adapter) -> None:
    if adapter.name in _REGISTRY:
        raise ValueError(f"trace format {adapter.name!r} is already registered")
    _REGISTRY[adapter.name] = adapter


for _adapter in (
    InspectAIAdapter(),
    AgentDojoAdapter(),
    OTelGenAIAdapter(),
    BrowserUseAdapter(),
    SWEAgentAdapter(),
    OpenHandsAdapter(),
    Mind2WebAdapter(),
    MCPAdapter(),
    OpenAIResponsesAdapter(),
    AnthropicMessagesAdapter(),
    OpenAIChatAdapter(),
):
    register(_adapter)


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Adapter:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DetectionError(
            f"unknown format {name!r}; known formats: {', '.join(_REGISTRY)}"
        ) from None


def all_adapters() -> list[Adapter]:
    return list(_REGISTRY.values())


def detect(doc: Any) -> Adapter:
    for adapter in _REGISTRY.values():
        try:
            if adapter.detect(doc):
                return adapter
        except Exception:  # a detector must never take ingestion down; treat as "not mine"
            continue
    shape = type(doc).__name__
    if isinstance(doc, dict):
        shape += " with keys " + ", ".join(sorted(map(str, doc))[:12])
    raise DetectionError(
        f"no trace format recognised this {shape}; tried: {', '.join(_REGISTRY)}. "
        'Pass --format NAME (or "format" in the envelope) if you know it.'
    )
