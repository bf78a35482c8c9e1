"""The CLI as users run it: real subprocess invocations against a real DuckDB file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tracewatch.eval.corpus import CorpusSpec, write_corpus

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


def run(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*TW, *args], input=stdin, capture_output=True, timeout=120, env=env)


def test_ingest_stats_quarantine_json(tmp_path: Path) -> None:
    corpus = Path(write_corpus(CorpusSpec(seed=3, interactions=60, accounts=5), tmp_path)["path"])
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"not json at all\n")
    db = str(tmp_path / "cli.duckdb")
    r = run("ingest", str(corpus), str(bad), "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    rep = orjson.loads(r.stdout)
    assert rep["ingested"] == 60 and rep["quarantined"] == 1
    r = run("stats", "--db", db, "--json")
    stats = orjson.loads(r.stdout)
    assert stats["interactions"] == 60 and stats["accounts"] == 5 and stats["quarantined"] == 1
    assert sum(stats["by_format"].values()) == 60
    q = orjson.loads(run("quarantine", "list", "--db", db, "--json").stdout)
    assert (
        q[0]["source_file"] == str(bad) and q[0]["line"] == 1 and q[0]["reason"] == "invalid_json"
    )
    human = run("ingest", str(corpus), "--db", db)
    assert human.returncode == 0 and b"duplicates skipped" in human.stdout


def test_stdin_and_env_db(tmp_path: Path) -> None:
    env = {"TRACEWATCH_DB": str(tmp_path / "env.duckdb"), "PATH": "/usr/bin:/bin"}
    line = orjson.dumps(
        {
            "account_id": "s1",
            "trace": {
                "input": [
                    {
                        "type": "computer_call",
                        "call_id": "c",
                        "action": {"type": "type", "text": "hi"},
                    }
                ]
            },
        }
    )
    r = run("ingest", "-", "--json", stdin=line + b"\n", env=env)
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["ingested"] == 1
    assert orjson.loads(run("stats", "--json", env=env).stdout)["by_format"] == {
        "openai_responses": 1
    }


def test_errors_are_clear_and_nonzero(tmp_path: Path) -> None:
    r = run("ingest", str(tmp_path / "nope"), "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2 and b"no such file or directory" in r.stderr
    r = run("ingest", str(tmp_path), "--format", "klingon", "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2 and b"unknown format 'klingon'" in r.stderr
    r = run("stats", "--db", str(tmp_path / "missing.duckdb"))
    assert r.returncode == 2 and b"no such database" in r.stderr
    notdb = tmp_path / "junk.duckdb"
    notdb.write_bytes(b"this is not a database" * 100)
    r = run("stats", "--db", str(notdb))
    assert r.returncode == 2 and b"cannot open the database" in r.stderr


def test_memory_limit_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from tracewatch.monitor.store import Store

    db = str(tmp_path / "m.duckdb")
    env = {**os.environ, "TRACEWATCH_MEMORY_LIMIT": "lots"}
    r = run("ingest", "-", "--db", db, stdin=b"", env=env)
    assert r.returncode == 2 and b"TRACEWATCH_MEMORY_LIMIT='lots'" in r.stderr
    monkeypatch.setenv("TRACEWATCH_MEMORY_LIMIT", "300MB")
    with Store(db) as s:
        limit = s.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "").lower() in ("286.1mib", "300.0mb", "300mb"), limit


def test_help_explains() -> None:
    r = run("ingest", "--help")
    assert r.returncode == 0
    assert b"envelope" in r.stdout and b"--account" in r.stdout
    formats = orjson.loads(run("formats", "--json").stdout)
    assert {f["name"] for f in formats} >= {
        "anthropic",
        "openai_responses",
        "openai_chat",
        "otel_genai",
        "browser_use",
        "openhands",
        "swe_agent",
        "inspect_ai",
        "agentdojo",
    }
