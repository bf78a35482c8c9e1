"""The fuzz suite (`make fuzz`, marker `fuzz`): thousands of broken and hostile records of
every format through the library, the real CLI and the real server. What must hold: no
traceback, exit 0 (or 2 for a usage error), every record given is either stored or
quarantined, the database readable afterwards, memory bounded, the server never 500."""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

import httpx
import orjson
import pytest
from fuzz_records import bases, record, records
from hostile import peak_rss_mb, rows, tw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracewatch.monitor.ingest import ingest
from tracewatch.monitor.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from server_harness import Running, new_secret, signed

pytestmark = pytest.mark.fuzz
BASES = bases()


def accounted(rep: dict, given: int, db: Path) -> None:
    """Every record given is stored (one or more interactions) or quarantined, exactly as the
    report says and as the database holds."""
    assert rep["records"] == given, rep
    assert rep["ingested"] + rep["duplicates"] + rep["quarantined"] >= given, rep
    assert rows(db, "SELECT count(*) FROM interactions") == [(rep["ingested"],)]
    stored_q = rows(db, "SELECT count(*) FROM quarantine")[0][0]
    assert stored_q + rep["quarantine_already_known"] == rep["quarantined"], rep


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seeds=st.lists(st.integers(0, 2**32 - 1), min_size=20, max_size=60))
def test_library_ingest_accounts_for_every_fuzzed_record(tmp_path: Path, seeds: list[int]) -> None:
    lines = [r for r in (record(random.Random(s), BASES) for s in seeds) if r.strip()]
    here = Path(tempfile.mkdtemp(dir=tmp_path))  # one folder per example
    src = here / "fuzz.jsonl"
    src.write_bytes(b"".join(r + b"\n" for r in lines))
    db = here / "fuzz.duckdb"
    with Store(db) as store:
        rep = ingest([str(src)], store).as_dict()
    accounted(rep, len(lines), db)


def test_cli_ingest_and_run_on_thousands_of_fuzzed_records(tmp_path: Path) -> None:
    given = 0
    files = []
    for seed in (11, 12, 13):
        lines = records(seed, 1000)
        given += len(lines)
        f = tmp_path / f"fuzz-{seed}.jsonl"
        f.write_bytes(b"".join(r + b"\n" for r in lines))
        files.append(f)
    db = tmp_path / "fuzz.duckdb"
    r = tw("ingest", *files, "--db", db, "--json", timeout=300)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()[-3000:]
    accounted(orjson.loads(r.stdout), given, db)
    # then the whole pipeline over what was stored, in bounded memory
    rc, peak = peak_rss_mb("run", files[0], "--db", db)
    assert rc == 0
    assert peak < 1024, f"peak RSS {peak:.0f} MiB"
    for view in (["stats", "--json"], ["quarantine", "list", "--json"], ["report", "overview"]):
        shown = tw(*view, "--db", db)
        assert shown.returncode == 0 and b"Traceback" not in shown.stderr, (view, shown.stderr)


def test_server_answers_fuzzed_deliveries_with_200_or_400_and_keeps_processing(
    tmp_path: Path,
) -> None:
    secret = new_secret(b"fuzz")
    db = tmp_path / "s.duckdb"
    # the reference signer signs text: the server test's records are valid UTF-8
    lines = [r.decode("utf-8", "replace").encode() for r in records(21, 1000)]
    with Running(db, [secret], {"acme": "k1"}, {"process_every_s": 0.5}) as srv:
        for n in range(0, len(lines), 100):
            body = b"\n".join(lines[n : n + 100])
            r = httpx.post(
                srv.url + "/v1/interactions",
                content=body,
                headers=signed(secret, body, f"fz-{n}"),
                timeout=60,
            )
            assert r.status_code in (200, 400), r.text[:2000]
        assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'code="500"' not in metrics
    # a clean SIGTERM: uvicorn shuts down gracefully, then re-raises the signal it caught
    assert srv.proc is not None and srv.proc.returncode in (0, -15)
    assert b"Traceback" not in db.with_suffix(".log").read_bytes()
    assert rows(db, "SELECT count(*) FROM interactions")[0][0] > 0
