"""Worker processes change how fast, never what: the same corpus run on one process, on a
pool of two, and stage by stage (ingest, summarize, rollup, judge) gives the same tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import orjson
import pytest
from db_rows import TABLES, rows
from hostile import tw

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.processes import WORKERS_ENV, worker_count

KEY = {"TRACEWATCH_REDACTION_KEY": "one deployment"}  # the same pseudonyms in every database


def _guarded(db: Path) -> dict[str, list[tuple]]:
    """What the leak guard kept: fingerprints of secrets, and its catches per stage."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: sorted(con.execute(f"SELECT * FROM {t}").fetchall())
            for t in ("secret_marks", "guard_catches")
        }
    finally:
        con.close()


def test_a_pool_of_workers_and_the_stages_store_what_one_process_stores(tmp_path: Path) -> None:
    info = write_corpus(
        CorpusSpec(seed=5, interactions=900, accounts=30, spam_campaign_accounts=4), tmp_path / "g"
    )
    corpus = Path(info["path"])
    assert corpus.stat().st_size > 4 << 20, "the corpus must be large enough for the pool"
    one, pool, staged = (tmp_path / f"{n}.duckdb" for n in ("one", "pool", "staged"))

    r = tw("run", corpus, "--db", one, "--json", env={**KEY, WORKERS_ENV: "1"}, timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    single = orjson.loads(r.stdout)
    r = tw("run", corpus, "--db", pool, "--json", env={**KEY, WORKERS_ENV: "2"}, timeout=600)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    pooled = orjson.loads(r.stdout)
    assert single["ingest"]["workers"] == 1 and pooled["ingest"]["workers"] == 2
    # in `run`, the embedded summary is made where the interaction is built, and counted
    assert pooled["ingest"]["summarized"] == single["ingest"]["summarized"] > 0
    assert pooled["summarize"]["summarized"] == pooled["ingest"]["summarized"]

    env = {**KEY, WORKERS_ENV: "2"}
    for stage in (["ingest", corpus], ["summarize"], ["rollup"], ["judge"]):
        r = tw(*stage, "--db", staged, env=env, timeout=600)
        assert r.returncode == 0, (stage, r.stderr.decode()[-2000:])

    a = rows(one)
    assert a["cases"] and a["summaries"], "the corpus must summarize and open cases"
    for other in (pool, staged):
        b = rows(other)
        for table in TABLES:
            assert a[table] == b[table], (other.name, table)
        assert _guarded(one) == _guarded(other), other.name


def test_the_worker_count_is_the_variable_or_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert worker_count() == 3
    monkeypatch.delenv(WORKERS_ENV)
    assert worker_count() >= 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(WORKERS_ENV, bad)
        with pytest.raises(ValueError, match=WORKERS_ENV):
            worker_count()


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    info = write_corpus(CorpusSpec(seed=3, interactions=3000, accounts=40), tmp_path / "g")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWATCH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracewatch.monitor.cli", "ingest", info["path"]]
        + ["--db", str(tmp_path / "k.duckdb")],
        env={**env, WORKERS_ENV: "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
            time.sleep(0.2)
            workers = [c for c in _children(proc.pid) if "spawn" in _cmdline(c)]
        assert len(workers) == 2, "the ingest must have started its two workers"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "workers outlived their killed parent"
    finally:
        if proc.poll() is None:
            proc.kill()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
