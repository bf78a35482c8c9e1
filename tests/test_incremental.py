"""Incremental runs give the database a one-shot run gives: the same corpus, in ten files
taken in time order, run in one go and as ten runs one file at a time; then a rerun with
nothing new, and a file grown at its end. Every table a reviewer reads must be equal."""

from __future__ import annotations

from pathlib import Path

import orjson
from db_rows import TABLES, rows
from hostile import tw

from tracewatch.eval.corpus import CorpusSpec, write_corpus


def _split(tmp: Path, parts: int) -> list[Path]:
    info = write_corpus(
        CorpusSpec(seed=5, interactions=900, accounts=30, spam_campaign_accounts=4), tmp / "gen"
    )
    lines = [ln for ln in Path(info["path"]).read_bytes().splitlines() if ln.strip()]
    lines.sort(key=lambda ln: orjson.loads(ln)["started_at"])
    size = -(-len(lines) // parts)
    files = []
    for n in range(parts):
        f = tmp / f"part-{n:02d}.jsonl"
        f.write_bytes(b"".join(ln + b"\n" for ln in lines[n * size : (n + 1) * size]))
        files.append(f)
    return files


def test_ten_increments_equal_one_run(tmp_path: Path) -> None:
    files = _split(tmp_path, 10)
    once, steps = tmp_path / "once.duckdb", tmp_path / "steps.duckdb"
    key = {"TRACEWATCH_REDACTION_KEY": "one deployment"}  # the same pseudonyms in both
    r = tw("run", *files, "--db", once, timeout=600, env=key)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    for f in files:
        r = tw("run", f, "--db", steps, timeout=600, env=key)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
    a, b = rows(once), rows(steps)
    assert a["cases"], "the corpus must open cases for the comparison to mean anything"
    for table in TABLES:  # interactions, steps, quarantine, summaries, aggregates, verdicts, cases
        assert a[table] == b[table], table


def test_rerun_with_nothing_new_changes_nothing_and_reads_nothing(tmp_path: Path) -> None:
    files = _split(tmp_path, 2)
    db = tmp_path / "t.duckdb"
    assert tw("run", *files, "--db", db).returncode == 0
    before = rows(db)
    r = tw("run", *files, "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    rep = orjson.loads(r.stdout)
    assert rep["ingest"]["files_unchanged"] == 2 and rep["ingest"]["records"] == 0
    assert rep["summarize"]["summarized"] == 0
    assert rep["rollup"]["windows_rolled"] == 0 and rep["rollup"]["campaigns_rolled"] == 0
    assert rep["judge"]["judged"] == 0 and rep["judge"]["aggregates"] == 0  # not even read
    assert rows(db) == before
    # a grown file is read from where it ended: only its new lines are records
    extra = tw("corpus", "generate", "--seed", "9", "--interactions", "40", "--out", tmp_path / "x")
    assert extra.returncode == 0
    new = next((tmp_path / "x").glob("*.jsonl")).read_bytes()
    with files[1].open("ab") as fh:
        fh.write(new)
    r = tw("run", *files, "--db", db, "--json")
    rep = orjson.loads(r.stdout)
    assert rep["ingest"]["files_read_from_where_they_ended"] == 1
    assert rep["ingest"]["records"] == len(new.splitlines())
    assert rep["ingest"]["ingested"] == len(new.splitlines())
