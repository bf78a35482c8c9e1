"""Hostile and broken records, shared by the hostile-input tests and the fuzz suite: each is
what an attacker or a broken exporter sends, written here, not copied from any corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import orjson

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


def tw(
    *args: object, stdin: bytes | None = None, env: dict[str, str] | None = None, timeout: int = 180
) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWATCH_")}
    return subprocess.run(
        [*TW, *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )


def peak_rss_mb(*args: object, env: dict[str, str] | None = None) -> tuple[int, float]:
    """Run the CLI in a fresh parent and return (exit code, the child's peak RSS in MiB)."""
    probe = (
        "import resource, subprocess, sys; "
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWATCH_")}
    got = subprocess.run(
        [sys.executable, "-c", probe, *TW, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **(env or {})},
    )
    rc, kib = got.stdout.split()
    return int(rc), int(kib) / 1024


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def messages(text: str = "hello") -> dict[str, Any]:
    return {
        "model": "claude-x",
        "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
        ],
    }


def env(n: int, trace: Any, **kw: Any) -> dict[str, Any]:
    doc = {"account_id": f"acct-{n % 3}", "started_at": "2026-11-01T10:00:00Z", "trace": trace}
    doc.update(kw)
    return doc


def good(n: int) -> dict[str, Any]:
    return env(n, messages(f"task number {n}"), interaction_id=f"good-{n}")


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def otel_span(end_ns: Any) -> dict[str, Any]:
    attr = [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]
    return {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "a1" * 16,
                                "spanId": "b2" * 8,
                                "name": "chat",
                                "startTimeUnixNano": "1761000000000000000",
                                "endTimeUnixNano": end_ns,
                                "attributes": attr,
                            }
                        ]
                    }
                ]
            }
        ]
    }


# name -> (one hostile record, the quarantine reason it must get)
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "otel span ending at 1e30 ns": (env(9, otel_span(1e30)), "time_out_of_range"),
    "started in year 9999 at -01:00": (
        env(9, messages(), started_at="9999-12-31T23:59:59-01:00"),
        "time_out_of_range",
    ),
    "started before 1970": (
        env(9, messages(), started_at="0001-01-01T00:00:00+01:00"),
        "time_out_of_range",
    ),
    "metadata nested 300 deep": (env(9, messages(), metadata={"deep": nested(300)}), "too_deep"),
    "tool input nested 800 deep": (
        env(
            9,
            {
                "model": "c",
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": "t", "name": "f", "input": nested(800)}
                        ],
                    },
                ],
            },
        ),
        "too_deep",
    ),
}


def dumps(record: Any) -> bytes:
    try:
        return orjson.dumps(record)
    except TypeError:  # past orjson's nesting limit, which is the point of some of these
        return json.dumps(record).encode()


def jsonl(records: list[Any]) -> bytes:
    return b"".join(dumps(r) + b"\n" for r in records)
