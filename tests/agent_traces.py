"""Anthropic computer-use request bodies built step by step, with what the page answered.

The detection tests need traces whose tool results read like a browser's (the page's URL
and title after a navigation, "Liked" after a click), which the eval generator's "ok"
results do not give. Everything goes through the real adapters and `tracewatch run`.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]
_ids = itertools.count(1)
Step = tuple[dict[str, Any], str, str | None]  # tool input, what the screen answered, narration


def visit(url: str, title: str = "page") -> list[Step]:
    return [
        ({"action": "key", "text": "ctrl+l"}, "ok", None),
        ({"action": "type", "text": url}, "ok", None),
        ({"action": "key", "text": "Return"}, f"[{url}] {title}", None),
    ]


def sign_in(user: str, password: str) -> list[Step]:
    return [
        ({"action": "left_click", "coordinate": [700, 200]}, "Sign in", "Clicking Sign in."),
        ({"action": "type", "text": user}, "ok", None),
        ({"action": "left_click", "coordinate": [700, 260]}, "ok", None),
        ({"action": "type", "text": password}, "ok", "Typing the password."),
        ({"action": "key", "text": "Return"}, f"Logged in as @{user}", None),
    ]


def comment(text: str) -> list[Step]:
    return [
        ({"action": "left_click", "coordinate": [640, 500]}, "Comment box is open.", None),
        ({"action": "type", "text": text}, "ok", None),
        ({"action": "left_click", "coordinate": [900, 620]}, "Comment posted", None),
    ]


def click(answer: str) -> list[Step]:
    return [({"action": "left_click", "coordinate": [300, 400]}, answer, None)]


def body(task: str, steps: list[Step], outcome: str) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": task}]
    for tool_input, answer, say in steps:
        tid = f"toolu_{next(_ids):08d}"
        content: list[dict[str, Any]] = [{"type": "text", "text": say}] if say else []
        content.append({"type": "tool_use", "id": tid, "name": "computer", "input": tool_input})
        msgs.append({"role": "assistant", "content": content})
        msgs.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tid,
                        "content": [{"type": "text", "text": answer}],
                    }
                ],
            }
        )
    msgs.append({"role": "assistant", "content": [{"type": "text", "text": outcome}]})
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "tools": [{"type": "computer_20250124", "name": "computer"}],
        "messages": msgs,
    }


def envelope(account: str, at: datetime, trace: dict[str, Any]) -> dict[str, Any]:
    return {
        "account_id": account,
        "started_at": at.isoformat(),
        "ended_at": (at + timedelta(seconds=70)).isoformat(),
        "format": "anthropic_messages",
        "trace": trace,
    }


def run(tmp: Path, envelopes: list[dict[str, Any]]) -> Path:
    """`tracewatch run` on the envelopes, in a fresh database; the database's path."""
    src = tmp / "traces.jsonl"
    src.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in envelopes))
    db = tmp / "tw.duckdb"
    proc = subprocess.run(
        [*TW, "run", str(src), "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return db
