"""Ingestion into a real DuckDB file: completeness, idempotency, quarantine, crash safety."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.ingest import IngestOptions, PathError, ingest
from tracewatch.monitor.store import Store, StoreError

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


@pytest.fixture(scope="module")
def corpus_5k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    return Path(write_corpus(CorpusSpec(seed=11, interactions=5000, accounts=60), out)["path"])


def test_5k_mixed_corpus_ingests_completely_and_idempotently(
    corpus_5k: Path, tmp_path: Path
) -> None:
    db = tmp_path / "tw.duckdb"
    with Store(db) as store:
        first = ingest([str(corpus_5k)], store)
        assert first.inserted == 5000 and first.quarantined == 0
        assert set(first.by_format) == {"anthropic", "openai_responses"}
        assert min(first.by_format.values()) > 2000
        # unchanged: not read again; read again anyway, every record is a duplicate
        again = ingest([str(corpus_5k)], store)
        assert again.unchanged_files == 1 and again.records == 0 and again.inserted == 0
        second = ingest([str(corpus_5k)], store, IngestOptions(reread=True))
        assert second.inserted == 0 and second.duplicates == 5000
        stats = store.stats()
    assert stats["interactions"] == 5000 and stats["accounts"] == 60
    con = duckdb.connect(str(db), read_only=True)
    # every interaction has exactly its steps, none orphaned or doubled
    bad = con.execute(
        "SELECT count(*) FROM interactions i LEFT JOIN "
        "(SELECT interaction_id, count(*) n FROM steps GROUP BY 1) s USING (interaction_id) "
        "WHERE coalesce(s.n, 0) <> i.n_steps"
    ).fetchone()[0]
    assert bad == 0
    # screenshots are attachments (hash + size), never bytes
    atts = con.execute("SELECT count(*) FROM steps WHERE attachments IS NOT NULL").fetchone()[0]
    assert atts > 5000
    assert (
        con.execute(
            "SELECT count(*) FROM steps WHERE text LIKE '%iVBORw0KGgo%' "
            "OR result LIKE '%iVBORw0KGgo%'"
        ).fetchone()[0]
        == 0
    )
    # the typed URLs give the domains later stages query
    assert con.execute("SELECT count(DISTINCT target_domain) FROM steps").fetchone()[0] >= 15


def _envelope(i: int) -> bytes:
    return orjson.dumps(
        {
            "account_id": f"a{i % 3}",
            "started_at": f"2026-10-0{1 + i % 5}T10:00:00Z",
            "trace": {
                "messages": [
                    {"role": "user", "content": f"hello {i}"},
                    {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
                ]
            },
        }
    )


def test_broken_lines_are_quarantined_with_file_line_reason(tmp_path: Path) -> None:
    f = tmp_path / "mixed.jsonl"
    lines = [
        _envelope(1),
        b'{"account_id": "a1", "trace": {"messages": [',  # truncated JSON
        _envelope(2),
        orjson.dumps({"acount_id": "typo", "trace": {"messages": []}}),  # bad envelope field
        orjson.dumps({"account_id": "a1", "trace": {"weird": True}}),  # no format matches
        orjson.dumps(
            {
                "account_id": "a1",
                "format": "openai_responses",
                "trace": {"input": [{"type": "computer_call", "call_id": "c1"}]},
            }
        ),
        _envelope(3),
    ]
    f.write_bytes(b"\n".join(lines) + b"\n")
    with Store(tmp_path / "q.duckdb") as store:
        rep = ingest([str(f)], store)
        rows = {r["line"]: r for r in store.quarantine()}
    assert rep.inserted == 3 and rep.quarantined == 4
    assert set(rows) == {2, 4, 5, 6}
    assert all(r["source_file"] == str(f) for r in rows.values())
    assert rows[2]["reason"] == "invalid_json"
    assert rows[4]["reason"] == "invalid_envelope"
    assert "account_id: Field required" in rows[4]["error"] and "acount_id" in rows[4]["error"]
    assert rows[5]["reason"] == "unknown_format" and "tried: inspect_ai" in rows[5]["error"]
    assert rows[6]["reason"] == "adapter_error" and rows[6]["adapter"] == "openai_responses"
    assert "items[0].action" in rows[6]["error"]


def test_quarantine_keeps_raw_and_is_not_duplicated(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b'{"account_id": "x", "trace": \n')
    with Store(tmp_path / "q.duckdb") as store:
        ingest([str(f)], store)
        ingest([str(f)], store)
        rows = store.quarantine()
        assert len(rows) == 1
        assert store.quarantined_raw(rows[0]["quarantine_id"]) == b'{"account_id": "x", "trace": '


def test_bare_file_with_account_and_defaults(tmp_path: Path) -> None:
    f = tmp_path / "chat.json"
    f.write_bytes(
        orjson.dumps(
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "user", "content": "weather?"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c1", "content": "rain"},
                ],
            }
        )
    )
    with Store(tmp_path / "b.duckdb") as store:
        rep = ingest([str(f)], store, IngestOptions(account="acme-42"))
        row = store.con.execute("SELECT account_id, source_format FROM interactions").fetchone()
        step = store.con.execute(
            "SELECT arguments, result FROM steps WHERE kind = 'tool_call'"
        ).fetchone()
    assert row == ("acme-42", "openai_chat")
    assert orjson.loads(step[0]) == {"_raw": '{"city": "Oslo"'}  # malformed args kept raw
    assert step[1] == "rain"
    assert rep.defaults_used["account from --account"] == 1
    assert rep.defaults_used["time from the file's modification time"] == 1


def test_gzip_jsonl_and_unreadable_path(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl.gz"
    f.write_bytes(gzip.compress(b"\n".join(_envelope(i) for i in range(10))))
    with Store(tmp_path / "g.duckdb") as store:
        assert ingest([str(f)], store).inserted == 10
        with pytest.raises(PathError, match="no such file"):
            ingest([str(tmp_path / "missing.jsonl")], store)


def test_same_content_from_two_accounts_is_two_interactions(tmp_path: Path) -> None:
    trace = {"messages": [{"role": "user", "content": "post: Best deals at shop.example!"}]}
    f = tmp_path / "same.jsonl"
    f.write_bytes(b"\n".join(orjson.dumps({"account_id": a, "trace": trace}) for a in ("a", "b")))
    with Store(tmp_path / "s.duckdb") as store:
        assert ingest([str(f)], store).inserted == 2
        hashes = store.con.execute("SELECT DISTINCT content_hash FROM interactions").fetchall()
    assert len(hashes) == 1


def test_big_screenshots_are_dropped_before_parsing(tmp_path: Path) -> None:
    """A 40 MB dump of screenshots: stored as hashes, the parse never holds the base64."""
    import base64
    import hashlib

    from tracewatch.trace_adapters.blobs import strip_blobs

    png = b"\x89PNG\r\n\x1a\n" + os.urandom(3_000_000)
    b64 = base64.b64encode(png).decode()
    msgs = [{"role": "user", "content": "go"}]
    for i in range(10):
        msgs.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": f"t{i}",
                        "name": "computer",
                        "input": {"action": "screenshot"},
                    }
                ],
            }
        )
        msgs.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"t{i}",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": b64,
                                },
                            }
                        ],
                    }
                ],
            }
        )
    raw = orjson.dumps({"account_id": "big", "trace": {"messages": msgs}})
    assert len(raw) > 40_000_000
    assert len(strip_blobs(raw)) < 10_000
    f = tmp_path / "big.jsonl"
    f.write_bytes(raw + b"\n")
    with Store(tmp_path / "big.duckdb") as store:
        assert ingest([str(f)], store).inserted == 1
        atts = store.con.execute(
            "SELECT attachments FROM steps WHERE attachments IS NOT NULL"
        ).fetchall()
    assert len(atts) == 10
    first = orjson.loads(atts[0][0])[0]
    assert first == {
        "media_type": "image/png",
        "size": len(png),
        "sha256": hashlib.sha256(png).hexdigest(),
    }


def test_locked_database_gives_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(db)!r}); "
            "print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"ready"
        with pytest.raises(StoreError, match="in use by another tracewatch process"):
            Store(db)
    finally:
        holder.kill()
        holder.wait()


def test_killed_ingest_keeps_whole_batches_and_resumes(corpus_5k: Path, tmp_path: Path) -> None:
    # Three distinct copies (15k interactions, several seconds of work) so that a kill within
    # the first seconds always lands mid-run, whatever the machine's speed.
    src = tmp_path / "in"
    src.mkdir()
    lines = corpus_5k.read_bytes().splitlines()
    for copy in range(3):
        with open(src / f"part{copy}.jsonl", "wb") as fh:
            for line in lines:
                env = orjson.loads(line)
                env["interaction_id"] += f"-{copy}"
                fh.write(orjson.dumps(env) + b"\n")
    total = 3 * len(lines)
    db = tmp_path / "crash.duckdb"
    proc = subprocess.Popen(
        [*TW, "ingest", str(src), "--db", str(db), "--batch-size", "100"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 3
    wal = Path(f"{db}.wal")
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        size = sum(p.stat().st_size for p in (db, wal) if p.exists())
        if size > 3_000_000:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(db) as store:
        partial = store.stats()["interactions"]
        broken = store.con.execute(
            "SELECT count(*) FROM interactions i LEFT JOIN "
            "(SELECT interaction_id, count(*) n FROM steps GROUP BY 1) s USING (interaction_id) "
            "WHERE coalesce(s.n, 0) <> i.n_steps"
        ).fetchone()[0]
        assert broken == 0  # never half an interaction
        assert partial % 100 == 0 and partial < total
        rep = ingest([str(src)], store)
        assert rep.inserted == total - partial
        assert store.stats()["interactions"] == total


def test_same_id_with_different_content_is_quarantined_not_dropped(tmp_path: Path) -> None:
    def env(text: str) -> bytes:
        return orjson.dumps(
            {
                "account_id": "a",
                "interaction_id": "fixed-1",
                "trace": {"messages": [{"role": "user", "content": text}]},
            }
        )

    f = tmp_path / "conflict.jsonl"
    f.write_bytes(env("first") + b"\n" + env("first") + b"\n" + env("second") + b"\n")
    with Store(tmp_path / "c.duckdb") as store:
        rep = ingest([str(f)], store)
        rows = store.quarantine()
    assert (rep.inserted, rep.duplicates, rep.quarantined) == (1, 1, 1)
    assert rows[0]["reason"] == "conflicting_duplicate" and rows[0]["line"] == 3
    assert "fixed-1" in rows[0]["error"]
