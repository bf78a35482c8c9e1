"""The envelope's `format` hint is advice: senders' spellings are accepted, a wrong or unknown
hint falls back to detection and is counted, and only what no adapter reads is quarantined."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tracewatch.trace_adapters import DetectionError, get
from tracewatch.trace_adapters.registry import resolve

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]

MESSAGES = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "user", "content": "Open the weather page for Lisbon."},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "t1",
                    "name": "computer",
                    "input": {"action": "screenshot"},
                }
            ],
        },
    ],
    "tools": [{"type": "computer_20250124", "name": "computer"}],
}
RESPONSES = {
    "model": "computer-use-preview",
    "input": [{"role": "user", "content": "Find the opening hours."}],
    "output": [
        {"type": "computer_call", "call_id": "c1", "action": {"type": "screenshot"}},
    ],
}


@pytest.mark.parametrize(
    ("hint", "name"),
    [
        ("anthropic_messages", "anthropic"),
        ("Anthropic-Messages", "anthropic"),
        ("claude", "anthropic"),
        ("openai-responses", "openai_responses"),
        ("responses", "openai_responses"),
        ("chat_completions", "openai_chat"),
        ("otlp", "otel_genai"),
        ("OTel", "otel_genai"),
        ("browser-use", "browser_use"),
    ],
)
def test_senders_spellings_name_the_adapter(hint: str, name: str) -> None:
    adapter = resolve(hint)
    assert adapter is not None and adapter.name == name


def test_an_unknown_format_flag_is_still_a_usage_error() -> None:
    assert resolve("carrier-pigeon") is None
    with pytest.raises(DetectionError, match="carrier-pigeon"):
        get("carrier-pigeon")


def _envelope(i: int, fmt: str | None, trace: object) -> bytes:
    env = {"account_id": f"acct_{i % 3}", "started_at": f"2026-10-0{1 + i % 5}T10:00:00Z"}
    if fmt is not None:
        env["format"] = fmt
    env["trace"] = trace
    return orjson.dumps(env)


def test_wrong_or_unknown_hints_fall_back_to_detection_and_are_counted(tmp_path: Path) -> None:
    lines = [
        _envelope(0, "anthropic_messages", MESSAGES),  # an alias: read, not a mismatch
        _envelope(1, "openai_responses", MESSAGES),  # the wrong adapter: detection reads it
        _envelope(2, "claude-v9-format", MESSAGES),  # names no adapter: detection reads it
        _envelope(3, "anthropic", RESPONSES),  # wrong the other way
        _envelope(4, "anthropic", {"not": "a trace"}),  # nothing reads it: quarantined
    ]
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    db = tmp_path / "tw.duckdb"
    proc = subprocess.run(
        [*TW, "ingest", str(src), "--db", str(db), "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["ingested"] == 4 and rep["quarantined"] == 1
    assert rep["by_format"] == {"anthropic": 3, "openai_responses": 1}
    mism = rep["format_hint_mismatches"]
    assert sum(mism.values()) == 3
    assert any(k.startswith("claude-v9-format (no known format)") for k in mism)
    assert any(k.startswith("anthropic (anthropic) -> read as openai_responses") for k in mism)
    # the quarantined record keeps the hinted adapter's own reason
    q = subprocess.run(
        [*TW, "quarantine", "list", "--db", str(db), "--json"], capture_output=True, text=True
    )
    rows = json.loads(q.stdout)
    assert len(rows) == 1 and rows[0]["line"] == 5
    # the human table names the mismatch too
    proc = subprocess.run(
        [*TW, "ingest", str(src), "--db", str(tmp_path / "b.duckdb")],
        capture_output=True,
        text=True,
    )
    assert "format hint did not fit" in proc.stdout
