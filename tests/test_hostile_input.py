"""Hostile and broken input through the real CLI: one record never stops the file, every good
record is stored, every bad one is quarantined with its reason, and nothing reports success
for what it did not keep."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import orjson
import pytest
from hostile import HOSTILE, env, good, jsonl, messages, peak_rss_mb, rows, tw


def ingest_json(*args: object, stdin: bytes | None = None, env_: dict[str, str] | None = None):
    r = tw("ingest", *args, "--json", stdin=stdin, env=env_)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert b"Traceback" not in r.stderr
    return orjson.loads(r.stdout)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_one_hostile_record_is_quarantined_and_the_rest_are_stored(
    tmp_path: Path, case: str
) -> None:
    bad, reason = HOSTILE[case]
    src = tmp_path / "in.jsonl"
    src.write_bytes(jsonl([good(1), good(2), bad, good(3), good(4), good(5)]))
    db = tmp_path / "t.duckdb"
    rep = ingest_json(src, "--db", db)
    assert (rep["ingested"], rep["quarantined"]) == (5, 1)
    assert rep["quarantined_by_reason"] == {reason: 1}
    (q,) = rows(db, "SELECT line, reason, error, raw IS NOT NULL FROM quarantine")
    assert q[0] == 3 and q[1] == reason and q[3], q  # its line, its reason, kept whole
    # and the database stays usable end to end after it
    r = tw("run", src, "--db", db, "--json")
    assert r.returncode == 0, r.stderr.decode()[-2000:]


def test_a_gzip_stream_broken_in_the_middle_keeps_the_lines_before_it(tmp_path: Path) -> None:
    data = jsonl([good(n) for n in range(400)])
    gz = bytearray(gzip.compress(data))
    mid = len(gz) // 2
    for k in range(mid, mid + 64):
        gz[k] ^= 0x55
    src = tmp_path / "broken.jsonl.gz"
    src.write_bytes(bytes(gz))
    db = tmp_path / "t.duckdb"
    rep = ingest_json(src, "--db", db)
    assert rep["ingested"] > 50  # the lines before the break
    assert rep["ingested"] + rep["quarantined"] + rep["duplicates"] == rep["records"]
    errors = [e for (e,) in rows(db, "SELECT error FROM quarantine")]
    assert any("bad gzip data after line" in e for e in errors), errors


def test_a_multi_member_gzip_file_is_read_whole(tmp_path: Path) -> None:
    src = tmp_path / "two.jsonl.gz"
    src.write_bytes(
        gzip.compress(jsonl([good(n) for n in range(3)]))
        + gzip.compress(jsonl([good(n) for n in range(3, 7)]))
    )
    rep = ingest_json(src, "--db", tmp_path / "t.duckdb")
    assert rep["ingested"] == 7


def test_broken_eval_archives_are_one_quarantine_row_each(tmp_path: Path) -> None:
    listed = tmp_path / "header-list.eval"
    with zipfile.ZipFile(listed, "w") as z:
        z.writestr("header.json", "[1, 2, 3]")
        z.writestr("samples/1_epoch_1.json", orjson.dumps({"id": 1, "messages": []}))
    bomb = tmp_path / "bomb.eval"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("header.json", orjson.dumps({"eval": {"task": "t"}}))
        z.writestr("samples/1_epoch_1.json", b" " * (64 << 20))
    db = tmp_path / "t.duckdb"
    limits = '{"max_document_bytes": 8388608}'
    rc, peak = peak_rss_mb("ingest", listed, bomb, "--db", db, env={"TRACEWATCH_LIMITS": limits})
    assert rc == 0
    assert peak < 400, f"peak RSS {peak:.0f} MiB reading a 64 MiB member past an 8 MiB limit"
    got = dict(rows(db, "SELECT source_file, reason || ': ' || error FROM quarantine"))
    assert "expected a JSON object" in got[str(listed)]
    assert got[str(bomb)].startswith("too_large") and "8388608-byte limit" in got[str(bomb)]


def test_a_gzip_bomb_line_is_quarantined_without_being_held(tmp_path: Path) -> None:
    src = tmp_path / "bomb.jsonl.gz"
    with gzip.open(src, "wb", compresslevel=9) as fh:
        fh.write(jsonl([good(1)]))
        fh.write(b"{" + b" " * (200 << 20))  # one 200 MiB line, no newline
    db = tmp_path / "t.duckdb"
    limits = '{"max_record_bytes": 4194304}'
    rc, peak = peak_rss_mb("ingest", src, "--db", db, env={"TRACEWATCH_LIMITS": limits})
    assert rc == 0 and peak < 400, peak
    assert rows(db, "SELECT count(*) FROM interactions") == [(1,)]
    (q,) = rows(db, "SELECT reason, line, octet_length(raw) FROM quarantine")
    assert q[0] == "too_large" and q[1] == 2 and q[2] <= 1 << 20


def test_stdin_is_read_like_a_file(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    goods = jsonl([good(n) for n in range(5)])
    # a first line that is not JSON costs that line, not the stream
    rep = ingest_json("-", "--db", db, stdin=b"this is not json\n" + goods)
    assert (rep["ingested"], rep["quarantined"]) == (5, 1)
    # a byte-order mark is not a record
    rep = ingest_json("-", "--db", tmp_path / "bom.duckdb", stdin=b"\xef\xbb\xbf" + goods)
    assert (rep["ingested"], rep["quarantined"]) == (5, 0)
    # empty input: nothing was sent, nothing is recorded
    rep = ingest_json("-", "--db", tmp_path / "empty.duckdb", stdin=b"")
    assert (rep["records"], rep["quarantined"]) == (0, 0)
    # a pretty-printed document still reads as one
    doc = orjson.dumps(good(9), option=orjson.OPT_INDENT_2)
    rep = ingest_json("-", "--db", tmp_path / "doc.duckdb", stdin=doc)
    assert rep["ingested"] == 1


def test_stdin_without_newlines_is_bounded(tmp_path: Path) -> None:
    big = tmp_path / "one-line.bin"
    big.write_bytes(b'{"a": "' + b"x" * (96 << 20))
    db = tmp_path / "t.duckdb"
    probe_env = {"TRACEWATCH_LIMITS": '{"max_record_bytes": 8388608}'}
    r = tw("ingest", "-", "--db", db, "--json", stdin=big.read_bytes(), env=probe_env)
    assert r.returncode == 0, r.stderr.decode()[-1000:]
    assert orjson.loads(r.stdout)["quarantined_by_reason"] == {"too_large": 1}


def test_db_must_be_a_duckdb_file_or_a_new_path(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(jsonl([good(1)]))
    for name, content in (("x.json", b"{}"), ("x.jsonl", jsonl([good(1)])), ("x.csv", b"a,b\n")):
        other = tmp_path / name
        other.write_bytes(content)
        r = tw("ingest", src, "--db", other)
        assert r.returncode == 2 and b"not a DuckDB database" in r.stderr, r.stderr
        assert other.read_bytes() == content
        assert not Path(f"{other}.key").exists()
    r = tw("ingest", src, "--db", tmp_path)
    assert r.returncode == 2 and b"is a directory" in r.stderr


def test_report_exports_never_overwrite_the_database(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(jsonl([good(n) for n in range(3)]))
    db = tmp_path / "t.duckdb"
    assert tw("run", src, "--db", db).returncode == 0
    before = db.read_bytes()
    for target in (db, tmp_path, Path(f"{db}.key")):
        r = tw("report", "overview", "--db", db, "--html", target)
        assert r.returncode == 2, (target, r.stdout)
    r = tw("report", "overview", "--db", db, "--svg", db)
    assert r.returncode == 2 and b"refusing to overwrite" in r.stderr
    assert db.read_bytes() == before
    ok = tw("report", "overview", "--db", db, "--html", tmp_path / "overview.html")
    assert ok.returncode == 0 and (tmp_path / "overview.html").stat().st_size > 0


def test_an_empty_key_file_is_replaced_and_the_key_written_whole(tmp_path: Path) -> None:
    from tracewatch.summarizers.redaction import load_key

    db = tmp_path / "t.duckdb"
    Path(f"{db}.key").write_bytes(b"")  # what a kill between create and write used to leave
    key = load_key(str(db))
    assert len(key) == 64 and Path(f"{db}.key").read_bytes() == key
    assert load_key(str(db)) == key  # stable
    assert (Path(f"{db}.key").stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["t.duckdb.key"]  # no temporary left


def test_trace_text_cannot_drive_the_reviewers_terminal(tmp_path: Path) -> None:
    hostile = "title \x1b]0;owned\x07 then \x1b[2J\x1b[H cleared \u202eevil\u202c \x9b31m"
    rec = env(1, messages(f"post this: {hostile}"), interaction_id="esc-1")
    rec["trace"]["messages"][1]["content"][0]["text"] = hostile
    src = tmp_path / "in.jsonl"
    src.write_bytes(jsonl([rec, good(2)]))
    db = tmp_path / "t.duckdb"
    assert tw("run", src, "--db", db).returncode == 0
    (iid,) = rows(db, "SELECT interaction_id FROM interactions WHERE account_id = 'acct-1'")[0]
    for view in (
        ["report", "interaction", iid],
        ["report", "account", "acct-1"],
        ["stats"],
        ["quarantine", "list"],
    ):
        r = tw(*view, "--db", db)
        assert r.returncode == 0, (view, r.stderr)
        out = r.stdout.decode()
        for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert bad not in out, (view, repr(bad))
    shown = tw("report", "interaction", iid, "--db", db).stdout.decode()
    assert "\u241b]0;owned" in shown  # made visible, not dropped


def test_the_same_id_under_another_account_is_kept_not_dropped(tmp_path: Path) -> None:
    a = env(0, messages("same content"), interaction_id="shared-id")
    b = {**a, "account_id": "someone-else"}
    src = tmp_path / "in.jsonl"
    src.write_bytes(jsonl([a, b, a]))
    db = tmp_path / "t.duckdb"
    rep = ingest_json(src, "--db", db)
    assert (rep["ingested"], rep["duplicates"], rep["quarantined"]) == (1, 1, 1)
    (err,) = rows(db, "SELECT error FROM quarantine WHERE reason = 'conflicting_duplicate'")[0]
    assert "another account" in err and "someone-else" in err


def test_megabyte_words_are_read_in_linear_time(tmp_path: Path) -> None:
    """1 MB single words of every shape that trips a backtracking pattern, and 5 MB ones of
    the worst, in every place text is read: the run finishes within the subprocess timeout
    (a super-linear pattern took about 54 s on 100 KB, hours on 5 MB) and each is summarized."""
    shapes = [("a", 1), ("a.", 1), ("a-", 1), ("1-", 1), ("a_", 1), ("http://a", 1), ("a@", 1)]
    shapes += [("a.", 5), ("a_", 5), ("1-", 5)]
    recs = []
    for n, (shape, mb) in enumerate(shapes):
        word = shape * (mb * 1_000_000 // len(shape))
        call = {"type": "tool_use", "id": "t1", "name": "computer",
                "input": {"action": "type", "text": word}}  # fmt: skip
        result = {"type": "tool_result", "tool_use_id": "t1", "content": word}
        trace = {
            "model": "c",
            "messages": [
                {"role": "user", "content": word},
                {"role": "assistant", "content": [call]},
                {"role": "user", "content": [result]},
                {"role": "assistant", "content": [{"type": "text", "text": word}]},
            ],
        }
        recs.append(env(n, trace, interaction_id=f"word-{n}"))
    src = tmp_path / "words.jsonl"
    src.write_bytes(jsonl(recs))
    db = tmp_path / "t.duckdb"
    r = tw("run", src, "--db", db, "--json", timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert rows(db, "SELECT count(*) FROM summaries") == [(len(shapes),)]


def test_a_half_written_json_document_is_one_record(tmp_path: Path) -> None:
    buf = io.BytesIO()
    buf.write(orjson.dumps(good(1), option=orjson.OPT_INDENT_2)[:-40])
    src = tmp_path / "cut.json"
    src.write_bytes(buf.getvalue())
    rep = ingest_json(src, "--db", tmp_path / "t.duckdb")
    assert (rep["records"], rep["quarantined"]) == (1, 1)
