"""Every real sample ingests, with the steps it really contains (not just 'it parsed')."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracewatch.monitor.ingest import discover, read_records
from tracewatch.monitor.models import Actor, StepKind
from tracewatch.trace_adapters import detect
from tracewatch.trace_adapters.base import ParsedTrace

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


def parse(path: Path) -> tuple[str, list[ParsedTrace]]:
    """A sample as ingestion reads it (documents, concatenated JSON, .eval, session folders)."""
    (rec,) = list(read_records(path, lambda n: None))
    assert rec.error is None, f"{path}: {rec.error}"
    adapter = detect(rec.doc)
    return adapter.name, list(adapter.parse(rec.doc))


def one(samples: Path, rel: str, fmt: str) -> ParsedTrace:
    name, traces = parse(samples / rel)
    assert name == fmt
    assert len(traces) == 1
    return traces[0]


def _inputs(samples: Path) -> list[Path]:
    """What ingestion would read under samples/, less the spec excerpts (not traces)."""
    inputs, _ = discover([str(samples)])
    return [
        p
        for p in inputs
        if isinstance(p, Path) and not {"spec", "spec-examples"} & set(p.relative_to(samples).parts)
    ]


def test_every_sample_file_is_read(samples: Path) -> None:
    inputs = _inputs(samples)
    assert len(inputs) >= 30
    for f in inputs:
        _, traces = parse(f)
        assert traces and all(t.steps for t in traces), f


def test_one_ingest_of_all_samples_exits_0_and_quarantines_only_spec_excerpts(
    samples: Path, tmp_path: Path
) -> None:
    db = tmp_path / "s.duckdb"
    proc = subprocess.run(
        [*TW, "ingest", str(samples), "--db", str(db), "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["ingested"] >= 80
    rows = json.loads(
        subprocess.run(
            [*TW, "quarantine", "list", "--db", str(db), "--json"], capture_output=True, text=True
        ).stdout
    )
    assert rows and all({"spec", "spec-examples"} & set(Path(r["source_file"]).parts) for r in rows)
    for fmt in ("langfuse", "mini_swe_agent", "openhands_v1", "otel_spans", "openhands"):
        assert rep["by_format"].get(fmt), fmt


def test_agentdojo_harmful_transfer(samples: Path) -> None:
    t = one(
        samples,
        "agentdojo/gpt4o_banking_ut1_important_instructions_it0__security_TRUE.json",
        "agentdojo",
    )
    calls = [s for s in t.steps if s.kind == StepKind.tool_call]
    assert [c.tool_name for c in calls] == ["get_most_recent_transactions", "send_money"]
    send = calls[1]
    assert send.arguments["recipient"] == "US133000000121212121212"
    assert "sent" in send.result
    assert t.metadata["security"] is True and t.metadata["injection_task_id"] == "injection_task_0"
    # the injected tool output is kept as the result of the call that fetched it
    assert "<INFORMATION>" in calls[0].result


def test_agentdojo_claude_pairs_toolu_ids(samples: Path) -> None:
    t = one(
        samples,
        "agentdojo/claude37_banking_ut0_important_instructions_it0__security_FALSE.json",
        "agentdojo",
    )
    call = next(s for s in t.steps if s.kind == StepKind.tool_call)
    assert call.call_id.startswith("toolu_") and call.tool_name == "read_file"
    assert "Bill for the month of December 2023" in call.result
    assert t.model == "claude-3-7-sonnet-20250219"


def test_browser_use_old_format(samples: Path) -> None:
    t = one(samples, "browser-use/jakkaj_AgentHistory.screenshots-stripped.json", "browser_use")
    nav = [s for s in t.steps if s.kind == StepKind.navigation]
    assert nav[0].action == "search_google"
    assert nav[0].target_domain == "google.com"
    assert nav[0].text.startswith("function calling leaderboard")
    assert any(s.action == "open_tab" and s.target_domain == "duckduckgo.com" for s in nav)
    failed_click = next(s for s in t.steps if s.action == "click")
    assert failed_click.is_error and "Failed to click" in failed_click.result
    assert (
        failed_click.arguments["element"]["href"]
        == "https://gorilla.cs.berkeley.edu/leaderboard.html"
    )
    assert t.started_at is not None and t.started_at.year == 2025


def test_browser_use_error_path(samples: Path) -> None:
    t = one(samples, "browser-use/pentest_agent_history.json", "browser_use")
    nav = next(s for s in t.steps if s.action == "navigate")
    assert nav.target_domain == "juice-shop.herokuapp.com"
    assert nav.is_error and "Navigation failed" in nav.result


def test_openhands_pairs_by_cause(samples: Path) -> None:
    t = one(samples, "openhands/basic_gui_mode.json", "openhands")
    runs = [s for s in t.steps if s.action == "run"]
    assert [r.text for r in runs] == [
        "mkdir -p /workspace/todo-app",
        "cd /workspace/todo-app && python3 -m http.server 8000",
    ]
    assert not runs[0].is_error and runs[1].is_error  # exit code -1 (timed out)
    assert "Serving HTTP" in runs[1].result
    edits = [s for s in t.steps if s.action == "edit"]
    assert [e.target_app for e in edits] == [
        "/workspace/todo-app/index.html",
        "/workspace/todo-app/app.js",
    ]
    assert t.steps[0].actor == Actor.user and "VueJS" in t.steps[0].text
    assert t.model and "claude" in t.model
    assert "awaiting_user_input" in t.metadata["agent_states"]


def test_openhands_chat(samples: Path) -> None:
    t = one(samples, "openhands/basic_interactions.json", "openhands")
    assert [s.actor for s in t.steps] == [Actor.user, Actor.agent] * 3
    assert t.steps[-1].action == "finish"


def test_swe_agent_new_format_pairs_repeated_ids(samples: Path) -> None:
    t = one(samples, "swe-agent/marshmallow-code__marshmallow-1867.traj", "swe_agent")
    calls = [s for s in t.steps if s.kind == StepKind.tool_call]
    assert len(calls) == 11
    assert all(
        c.result is not None for c in calls
    )  # ids repeat in this replay; each call still gets one
    assert calls[-1].tool_name == "submit"


def test_swe_agent_function_calling(samples: Path) -> None:
    t = one(samples, "swe-agent/function_calling_simple.traj", "swe_agent")
    calls = [s for s in t.steps if s.kind == StepKind.tool_call]
    assert [c.tool_name for c in calls] == ["find_file", "open", "edit", "bash", "submit"]
    assert calls[3].arguments == {"command": "python tests/missing_colon.py"}
    assert calls[3].result.startswith("8.2")


def test_swe_agent_old_format(samples: Path) -> None:
    t = one(samples, "swe-agent/swe-agent__test-repo-i1.traj", "swe_agent")
    calls = [s for s in t.steps if s.kind == StepKind.tool_call]
    assert len(calls) == 5
    assert calls[0].action == "find_file" and "Found 1 matches" in calls[0].result
    assert t.steps[0].actor == Actor.system


def test_inspect_browser_log(samples: Path) -> None:
    t = one(samples, "inspect-ai/2025-05-12T20-27-36-04-00_browser.json", "inspect_ai")
    nav = next(s for s in t.steps if s.kind == StepKind.navigation)
    assert nav.tool_name == "web_browser_go" and nav.target_domain == "aisi.gov.uk"
    clicks = [s for s in t.steps if s.tool_name == "web_browser_click"]
    assert [c.arguments["element_id"] for c in clicks] == [151, 884, 903]
    assert all(c.timestamp is not None for c in clicks)
    assert t.model == "gpt-4o-mini-2024-07-18"


def test_inspect_tool_errors_and_eval_zip(samples: Path) -> None:
    t = one(samples, "inspect-ai/log_tool_call_error.json", "inspect_ai")
    errors = [s for s in t.steps if s.is_error]
    assert len(errors) == 11 and "timeout" in errors[1].result
    z = one(samples, "inspect-ai/log_formats.eval", "inspect_ai")
    assert z.steps[1].actor == Actor.user and z.steps[-1].text == "No"


def test_inspect_images_become_attachments(samples: Path) -> None:
    t = one(samples, "inspect-ai/log_images_tc.json", "inspect_ai")
    user = next(s for s in t.steps if s.actor == Actor.user)
    assert user.text == "What is this a picture of?"
    assert user.attachments and user.attachments[0].media_type == "image/png"
    assert "base64" not in (user.text or "")


def test_mcp_request_and_result(samples: Path) -> None:
    req = one(samples, "mcp/call-tool-with-file-input.json", "mcp")
    assert req.steps[0].tool_name == "describe_image"
    assert req.steps[0].attachments[0].media_type == "image/png"
    res = one(samples, "mcp/result-with-structured-content.json", "mcp")
    assert res.steps[0].kind == StepKind.tool_result and "22.5" in res.steps[0].result


def test_mind2web_records(samples: Path) -> None:
    name, traces = parse(samples / "mind2web/mind2web_processed_first25.json")
    assert name == "mind2web" and len(traces) == 25
    first = traces[0]
    assert first.steps[0].text.startswith("Check for pickup restaurant")
    typed = [s.typed_text for s in first.steps if s.typed_text]
    assert "Boston" in typed


def test_otlp_generic_trace_and_logs(samples: Path) -> None:
    t = one(samples, "otel-genai/otlp-json-generic/trace.json", "otel_genai")
    assert t.steps[0].kind == StepKind.observation and t.steps[0].text == "I'm a server span"
    assert t.native_id == "5B8EFFF798038103D269B633813FC60C"
    assert t.started_at.year == 2018
    logs = one(samples, "otel-genai/otlp-json-generic/logs.json", "otel_genai")
    assert logs.steps[0].text == "Example log record"


@pytest.mark.parametrize("example", ["07", "09", "17"])
def test_otel_spec_message_examples_as_span_content(samples: Path, example: str) -> None:
    """The spec's own gen_ai message examples, carried in a chat span as a JSON string."""
    path = next((samples / "otel-genai/spec-examples").glob(f"{example}_*.json"))
    content = path.read_text()
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "chat gpt-4o",
        "startTimeUnixNano": "1700000000000000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.output.messages", "value": {"stringValue": content}},
        ],
    }
    doc = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
    t = next(detect(doc).parse(doc))
    calls = [s for s in t.steps if s.kind == StepKind.tool_call]
    if example == "07":
        assert calls[0].tool_name == "get_weather" and calls[0].arguments == {"location": "Paris"}
    elif example == "09":
        assert (
            calls[0].call_id == "call_VSPygqKTWdrhaFErNvMV18Yl" and calls[0].result == "rainy, 57°F"
        )
    else:
        assert calls[0].tool_name == "code_interpreter" and "(10, 20)" in calls[0].result
