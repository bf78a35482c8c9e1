"""The one registry of trace formats, and format detection.

Detection tries adapters from the most specific shape to the most generic (a Chat message list
matches many things, an Inspect EvalLog only itself), so order here is part of the contract.
"""

from __future__ import annotations

import re
from typing import Any

from tracewatch.trace_adapters.agentdojo import AgentDojoAdapter
from tracewatch.trace_adapters.anthropic_messages import AnthropicMessagesAdapter
from tracewatch.trace_adapters.atif import ATIFAdapter
from tracewatch.trace_adapters.base import Adapter
from tracewatch.trace_adapters.browser_use import BrowserUseAdapter
from tracewatch.trace_adapters.inspect_ai import InspectAIAdapter
from tracewatch.trace_adapters.langfuse import LangfuseAdapter
from tracewatch.trace_adapters.mcp import MCPAdapter
from tracewatch.trace_adapters.mind2web import Mind2WebAdapter
from tracewatch.trace_adapters.mini_swe_agent import MiniSWEAgentAdapter
from tracewatch.trace_adapters.openai_chat import OpenAIChatAdapter
from tracewatch.trace_adapters.openai_responses import OpenAIResponsesAdapter
from tracewatch.trace_adapters.openhands import OpenHandsAdapter
from tracewatch.trace_adapters.openhands_v1 import OpenHandsV1Adapter
from tracewatch.trace_adapters.otel_genai import OTelGenAIAdapter
from tracewatch.trace_adapters.otel_spans import OTelSpanListAdapter
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
    ATIFAdapter(),
    OTelGenAIAdapter(),
    OTelSpanListAdapter(),
    LangfuseAdapter(),
    BrowserUseAdapter(),
    SWEAgentAdapter(),
    MiniSWEAgentAdapter(),
    OpenHandsV1Adapter(),
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
    adapter = resolve(name)
    if adapter is None:
        raise DetectionError(f"unknown format {name!r}; known formats: {', '.join(_REGISTRY)}")
    return adapter


# What senders write in a `format` hint, normalised (lower case, '-', '.', '/' and spaces as '_').
# A hint is advice: the adapter it names is tried first, detection decides when it names none
# or its adapter refuses the trace.
_ALIASES: dict[str, str] = {
    "anthropic_messages": "anthropic",
    "anthropic_message": "anthropic",
    "anthropic_messages_api": "anthropic",
    "messages": "anthropic",
    "claude": "anthropic",
    "claude_messages": "anthropic",
    "anthropic_computer_use": "anthropic",
    "computer_use": "anthropic",
    "openai": "openai_responses",
    "responses": "openai_responses",
    "openai_response": "openai_responses",
    "responses_api": "openai_responses",
    "openai_responses_api": "openai_responses",
    "openai_computer_use": "openai_responses",
    "chat": "openai_chat",
    "chat_completions": "openai_chat",
    "chat_completion": "openai_chat",
    "openai_chat_completions": "openai_chat",
    "openai_chat_completion": "openai_chat",
    "openai_function_calling": "openai_chat",
    "openai_tools": "openai_chat",
    "otlp": "otel_genai",
    "otel": "otel_genai",
    "otlp_json": "otel_genai",
    "opentelemetry": "otel_genai",
    "otel_genai_spans": "otel_genai",
    "openinference": "otel_spans",
    "otel_console": "otel_spans",
    "console_spans": "otel_spans",
    "readable_spans": "otel_spans",
    "vercel_ai": "otel_spans",
    "gen_ai": "otel_genai",
    "genai": "otel_genai",
    "browseruse": "browser_use",
    "browser_use_history": "browser_use",
    "agent_history": "browser_use",
    "inspect": "inspect_ai",
    "inspect_log": "inspect_ai",
    "inspect_eval": "inspect_ai",
    "sweagent": "swe_agent",
    "mini_swe_agent_1": "mini_swe_agent",
    "mini_swe_agent_1_1": "mini_swe_agent",
    "minisweagent": "mini_swe_agent",
    "mswea": "mini_swe_agent",
    "swe_agent_traj": "swe_agent",
    "open_hands": "openhands",
    "openhands_v0": "openhands",
    "openhands_sdk": "openhands_v1",
    "software_agent_sdk": "openhands_v1",
    "openagentsafety": "openhands_v1",
    "agent_dojo": "agentdojo",
    "langfuse_trace": "langfuse",
    "harbor": "atif",
    "atif_v1": "atif",
    "trajectory_interchange": "atif",
    "langfuse_export": "langfuse",
}


def _normalise(hint: str) -> str:
    return re.sub(r"[\s\-./]+", "_", hint.strip().lower()).strip("_")


def resolve(hint: str | None) -> Adapter | None:
    """The adapter a format hint names, in any of the spellings senders use; None if none."""
    if not hint:
        return None
    key = _normalise(hint)
    name = key if key in _REGISTRY else _ALIASES.get(key)
    return _REGISTRY.get(name) if name else None


def aliases() -> dict[str, list[str]]:
    """Per format, the other spellings a hint may use (for `tracewatch formats`)."""
    out: dict[str, list[str]] = {n: [] for n in _REGISTRY}
    for alias, name in _ALIASES.items():
        if name in out:
            out[name].append(alias)
    return out


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
