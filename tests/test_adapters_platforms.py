"""Formats that real agent platforms write, read for what they contain: ATIF, mini-swe-agent,
OpenHands V1 and session folders, Langfuse exports, span lists outside OTLP, Zstandard
Inspect logs; and the reading rules around them (concatenated JSON, a broken .traj)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
from test_adapters_samples import one, parse

from tracewatch.monitor.models import Actor, StepKind
from tracewatch.trace_adapters import detect

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]

ATIF = {
    "schema_version": "ATIF-v1.6",
    "session_id": "s-1",
    "agent": {"name": "harbor-agent", "version": "1.0", "model_name": "m-1"},
    "steps": [
        {"step_id": 1, "source": "user", "message": "What is the price of ACME?"},
        {
            "step_id": 2,
            "source": "agent",
            "message": "Searching.",
            "reasoning_content": "Need the price.",
            "tool_calls": [
                {"tool_call_id": "c1", "function_name": "search", "arguments": {"q": "ACME"}}
            ],
            "observation": {"results": [{"source_call_id": "c1", "content": "ACME is $12"}]},
        },
        {"step_id": 3, "source": "agent", "message": [{"type": "text", "text": "It is $12."}]},
    ],
    "final_metrics": {"total_prompt_tokens": 100, "total_steps": 3},
}


def _ingest(tmp: Path, *paths: Path) -> dict:
    proc = subprocess.run(
        [*TW, "ingest", *map(str, paths), "--db", str(tmp / "tw.duckdb"), "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_atif_calls_are_answered_by_their_observation_results() -> None:
    adapter = detect(ATIF)
    assert adapter.name == "atif"
    (t,) = adapter.parse(ATIF)
    (call,) = [s for s in t.steps if s.kind == StepKind.tool_call]
    assert call.tool_name == "search" and call.arguments == {"q": "ACME"}
    assert call.result == "ACME is $12"
    assert t.steps[-1].text == "It is $12." and t.model == "m-1" and t.native_id == "s-1"


def test_mini_swe_agent_commands_are_tool_calls_with_their_output(samples: Path) -> None:
    t = one(samples, "mini-swe-agent/astropy__astropy-13236.traj.json", "mini_swe_agent")
    calls = [s for s in t.steps if s.kind == StepKind.tool_call]
    assert len(calls) > 20 and all(c.tool_name == "bash" for c in calls)
    assert all(c.arguments and c.arguments["command"] for c in calls)
    assert sum(1 for c in calls if c.result and "<returncode>" in c.result) > 20
    assert t.steps[1].actor == Actor.user and "PR description" in (t.steps[1].text or "")
    early = one(samples, "mini-swe-agent/local.traj.json", "mini_swe_agent")
    assert next(c.arguments["command"] for c in early.steps if c.kind == StepKind.tool_call) == (
        "echo 'hello world'"
    )


def test_openhands_v1_conversation_folder_is_one_interaction(samples: Path, tmp_path: Path) -> None:
    folder = samples / "openhands-v1" / "conversation-3880c060" / "event_service"
    name, traces = parse(folder)
    assert name == "openhands_v1" and len(traces) == 1
    calls = [s for s in traces[0].steps if s.kind in (StepKind.tool_call, StepKind.navigation)]
    assert len(calls) == 64
    # every observation found its call by tool_call_id (none is left as a stray result); three
    # printed nothing
    assert not [s for s in traces[0].steps if s.kind == StepKind.tool_result]
    assert sum(1 for c in calls if c.result) == 61
    assert traces[0].steps[0].actor == Actor.system
    rep = _ingest(tmp_path, samples / "openhands-v1" / "conversation-3880c060")
    assert rep["interactions"] == 1 and rep["by_format"] == {"openhands_v1": 1}


def test_openagentsafety_event_lists_browse_and_type(samples: Path) -> None:
    t = one(samples, "openhands-v1/openagentsafety/traj_safety-attendance.json", "openhands_v1")
    assert any(s.target_domain == "the-agent-company.com" for s in t.steps)
    assert all(s.result is not None for s in t.steps if s.kind == StepKind.tool_call)


def test_openhands_v0_session_folder_is_one_interaction(samples: Path, tmp_path: Path) -> None:
    rep = _ingest(tmp_path, samples / "openhands-session")
    assert rep["records"] == 1 and rep["by_format"] == {"openhands": 1}


def test_langfuse_export_tools_and_answer(samples: Path, tmp_path: Path) -> None:
    t = one(samples, "langfuse/claude-agent-2025-12-22.trace.json", "langfuse")
    calls = [s for s in t.steps if s.kind == StepKind.tool_call]
    assert {c.arguments.get("city") for c in calls} == {"Berlin", "New York"}
    assert all("Weather in" in (c.result or "") for c in calls)
    assert t.steps[0].text == "What's the weather like in Berlin and New York?"
    # a document with a `trace` key is an envelope only when it names an account
    rep = _ingest(tmp_path, samples / "langfuse")
    assert rep["ingested"] == 3 and rep["quarantined"] == 0


def test_span_lists_outside_otlp(samples: Path) -> None:
    name, traces = parse(samples / "openinference" / "vercel_v6_all-spans.json")
    assert name == "otel_spans" and len(traces) > 1
    said = [s.text for t in traces for s in t.steps if s.actor == Actor.agent and s.text]
    assert any("Lines of code align" in t for t in said)
    asked = [s.text for t in traces for s in t.steps if s.actor == Actor.user]
    assert "Write a haiku about programming." in asked
    name, traces = parse(samples / "otel-console" / "promptflow_console_spans.json")
    assert name == "otel_spans" and traces and all(t.steps for t in traces)


def test_a_zstandard_eval_log_is_read(samples: Path) -> None:
    t = one(samples, "inspect-ai/zstd_retry-2-then-success.eval", "inspect_ai")
    assert t.steps and any(s.actor == Actor.user for s in t.steps)


def test_concatenated_json_spans_and_a_broken_traj(tmp_path: Path) -> None:
    span = {
        "name": "tool",
        "context": {"trace_id": "0xabc", "span_id": "0x1"},
        "start_time": "2026-10-05T10:00:00Z",
        "end_time": "2026-10-05T10:00:01Z",
        "attributes": {"openinference.span.kind": "TOOL", "tool.name": "lookup"},
    }
    spans = tmp_path / "spans.json"
    spans.write_bytes(orjson.dumps(span, option=orjson.OPT_INDENT_2) * 2)
    broken = tmp_path / "run.traj"
    broken.write_text('{\n  "history": [\n    {"role": "user",\n')
    rep = _ingest(tmp_path, spans, broken)
    assert rep["by_format"] == {"otel_spans": 1}
    assert rep["quarantined"] == 1  # the whole .traj, once, not one row per line
