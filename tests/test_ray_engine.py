"""`tracewatch run --engine ray` on a local Ray: the same database as `tracewatch run`.

Both engines run as users run them (the real CLI, real files, a real local Ray) over one
corpus cut into several inputs, with a gzipped one, a record repeated across files, a record
whose id is reused for other content, and a line that is not JSON. Every table a reviewer
reads is then compared row for row. A second run shows the Ray output folder is resumable:
with one input's, one summary part's and one shard's files removed (as if their workers had
died before finishing), only those are redone, and the database comes out the same again.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'tracewatch[ray]')")

from db_rows import TABLES, rows

from tracewatch.eval.corpus import CorpusSpec, generate

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


def tw(*args: str, cwd: Path) -> dict:
    env = {**os.environ, "TRACEWATCH_REDACTION_KEY": "equivalence-test-key"}
    r = subprocess.run([*TW, *args, "--json"], capture_output=True, timeout=600, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    return orjson.loads(r.stdout)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray")
    envs = generate(
        CorpusSpec(seed=11, interactions=160, accounts=10, days=4, spam_campaign_accounts=4)
    )
    lines = [orjson.dumps(e) for e in envs]
    folder = root / "dumps"
    folder.mkdir()
    third = len(lines) // 3
    (folder / "a.jsonl").write_bytes(b"\n".join(lines[:third]) + b"\n" + lines[-1] + b"\n")
    with gzip.open(folder / "b.jsonl.gz", "wb") as fh:
        fh.write(b"\n".join(lines[third : 2 * third]) + b"\nnot json\n")
    reused = {**envs[0], "trace": envs[1]["trace"]}  # same id, other content: a conflict
    (folder / "c.jsonl").write_bytes(b"\n".join([*lines[2 * third :], orjson.dumps(reused)]))
    return folder


@pytest.fixture(scope="module")
def local_db(dumps: Path) -> tuple[Path, dict]:
    db = dumps.parent / "local.duckdb"
    return db, tw("run", str(dumps), "--db", str(db), cwd=dumps.parent)


def test_ray_engine_gives_the_same_database_and_resumes(
    dumps: Path, local_db: tuple[Path, dict]
) -> None:
    db, local = local_db
    expected = rows(db)
    assert local["judge"]["flagged"] > 0 and expected["cases"], "the corpus must open cases"
    assert len(expected["quarantine"]) == 2  # the bad line and the conflicting reuse

    out = dumps.parent / "ray-out"
    ray_db = dumps.parent / "ray.duckdb"
    first = tw(
        "run", str(dumps), "--db", str(ray_db), "--engine", "ray", "--workers", "2",
        "--output", str(out), cwd=dumps.parent,
    )  # fmt: skip
    got = rows(ray_db)
    for table in TABLES:
        assert got[table] == expected[table], f"{table} differs between the engines"
    for key in ("ingested", "duplicates", "quarantined", "records", "by_format"):
        assert first["ingest"][key] == local["ingest"][key], key
    assert first["summarize"]["summarized"] == local["summarize"]["summarized"]
    assert first["rollup"]["windows_rolled"] == local["rollup"]["windows_rolled"]
    assert first["rollup"]["campaigns_rolled"] == local["rollup"]["campaigns_rolled"] >= 1
    assert first["reused"]["inputs"] == 0 and first["reused"]["shards"] == 0

    # Remove what three workers would not have finished; leave a half-written file beside.
    inputs = sorted((out / "interactions").glob("*.parquet"))
    parts = sorted((out / "summaries").rglob("part-*.parquet"))
    shards = sorted((out / "aggregates").rglob("shard-*.parquet"))
    assert len(inputs) == 3 and parts and len(shards) == first["reused"]["shards_total"]
    part_rows = pq.read_metadata(parts[0]).num_rows
    for f in (inputs[0], parts[0], shards[0]):
        f.unlink()
    (parts[1].parent / f".{parts[1].name}.dead.tmp").write_bytes(b"PAR1 half")

    again_db = dumps.parent / "again.duckdb"
    again = tw(
        "run", str(dumps), "--db", str(again_db), "--engine", "ray", "--workers", "1",
        "--output", str(out), cwd=dumps.parent,
    )  # fmt: skip
    assert again["reused"]["inputs"] == 2
    assert again["summarize"]["summarized"] == part_rows
    assert again["summarize"]["cached"] == first["summarize"]["summarized"] - part_rows
    assert again["reused"]["shards"] == len(shards) - 1
    assert rows(again_db) == expected


def test_ray_engine_errors_name_the_input(tmp_path: Path) -> None:
    r = subprocess.run(
        [*TW, "run", str(tmp_path / "missing"), "--db", str(tmp_path / "x.duckdb"),
         "--engine", "ray"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and b"missing: no such file or directory" in r.stderr
    r = subprocess.run(
        [*TW, "run", "-", "--db", str(tmp_path / "x.duckdb"), "--engine", "ray"],
        capture_output=True, timeout=120, input=b"",
    )  # fmt: skip
    assert r.returncode == 2 and b"not stdin" in r.stderr
    r = subprocess.run(
        [*TW, "run", str(tmp_path), "--engine", "spark"], capture_output=True, timeout=120
    )
    assert r.returncode == 2 and b"unknown --engine" in r.stderr
