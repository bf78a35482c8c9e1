"""Hostile deliveries to a real `tracewatch serve` on 127.0.0.1: a bad record is answered
400 naming it (never 500), every good one is stored, and the worker keeps processing what
arrives after it; `/readyz` and `/metrics` say what failed."""

from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

import httpx
import orjson
from hostile import HOSTILE, dumps, good, messages, rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from server_harness import Running, new_secret, signed

SECRET = new_secret(b"hostile")
KEYS = {"acme": "acme-key-1", "globex": "globex-key-2"}


def deliver(url: str, body: bytes, wid: str, gz: bytes | None = None) -> httpx.Response:
    headers = signed(SECRET, body, wid)
    if gz is not None:
        headers["content-encoding"] = "gzip"
    return httpx.post(url + "/v1/interactions", content=gz or body, headers=headers, timeout=30)


def worker_passes(url: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith('tracewatch_worker_runs_total{outcome="ok"}'):
            return float(line.split()[-1])
    return 0.0


def wait_for(check, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def test_hostile_records_never_stop_the_receiver(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    cfg = {"process_every_s": 0.3, "trace_idle_s": 1.0}
    with Running(db, [SECRET], KEYS, cfg) as srv:
        # every hostile record in one array between good ones: 400 naming each, goods stored
        bad = [HOSTILE[k][0] for k in sorted(HOSTILE)]
        body = b"[" + b",".join(dumps(r) for r in [good(1), *bad, good(2)]) + b"]"
        r = deliver(srv.url, body, "msg_hostile")
        assert r.status_code == 400, r.text
        got = r.json()
        assert got["stored"] == 2 and got["records"] == 2 + len(bad)
        reasons = {q["record"]: q["reason"] for q in got["quarantined"]}
        want = {n + 2: HOSTILE[k][1] for n, k in enumerate(sorted(HOSTILE))}
        assert reasons == want
        # a 200 KB word: the server stays responsive while it is processed
        word = {"account_id": "acct-w", "started_at": "2026-11-01T11:00:00Z",
                "interaction_id": "word", "trace": messages("w" * 200_000)}  # fmt: skip
        one = orjson.dumps(word)
        assert deliver(srv.url, one, "msg_word").status_code == 200
        for _ in range(5):
            assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200
        # a two-member gzip body (RFC 1952) is read whole, and its signature checks out
        later = b"\n".join(orjson.dumps(good(n)) for n in range(10, 17))
        cut = later.index(b"\n", len(later) // 2)
        gz = gzip.compress(later[:cut]) + gzip.compress(later[cut:])
        r = deliver(srv.url, later, "msg_two_members", gz=gz)
        assert r.status_code == 200 and r.json()["stored"] == 7, r.text
        # what arrived after the hostile records is processed: summarized and rolled up (two
        # whole passes after the last delivery, so the backlog read is not an earlier one)
        passes = worker_passes(srv.url)
        assert wait_for(
            lambda: (
                worker_passes(srv.url) >= passes + 2
                and httpx.get(srv.url + "/readyz").json()["backlog"] == 0
                and httpx.get(srv.url + "/readyz").status_code == 200
            )
        ), httpx.get(srv.url + "/readyz").text
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["ready"] and ready["lag_s"] == 0 and "failed_items" in ready
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'tracewatch_rejected_total{reason="time_out_of_range"} 3.0' in metrics
        assert 'tracewatch_rejected_total{reason="too_deep"} 2.0' in metrics
        # nonsense query parameters are the client's error, not the server's
        rev = {"authorization": "Bearer rk-1"}
        r = httpx.get(srv.url + "/v1/reports/overview?since=99999999d", headers=rev)
        assert r.status_code in (400, 401), r.text
    summarized = rows(
        db,
        "SELECT count(*) FROM interactions i JOIN summaries s USING (content_hash)",
    )
    assert summarized == [(2 + 1 + 7,)]
    assert rows(db, "SELECT count(*) FROM quarantine") == [(len(bad),)]
    assert rows(db, "SELECT count(*) FROM aggregates WHERE kind = 'account_window'")[0][0] >= 3


def test_query_limits_are_refused_not_crashed(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    srv = Running(db, [SECRET], KEYS, {"process": False})
    srv.env["TRACEWATCH_REVIEW_KEYS"] = "rita=rk-rita-1"
    with srv:
        rev = {"authorization": "Bearer rk-rita-1"}
        r = httpx.get(srv.url + "/v1/reports/overview?since=99999999d", headers=rev)
        assert r.status_code == 400 and "year 1" in r.json()["error"], r.text
        r = httpx.get(srv.url + "/v1/cases?limit=99999999999999999999", headers=rev)
        assert 400 <= r.status_code < 500, r.text
        r = httpx.get(srv.url + "/v1/cases?limit=5", headers=rev)
        assert r.status_code == 200


def test_one_sender_cannot_add_spans_to_another_senders_trace(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"

    def spans(sender_text: str, span_id: str, root: bool) -> bytes:
        span = {
            "traceId": "77" * 16,
            "spanId": span_id,
            "name": "chat m",
            "startTimeUnixNano": "1761000000000000000",
            "endTimeUnixNano": "1761000001000000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {
                    "key": "gen_ai.input.messages",
                    "value": {
                        "stringValue": orjson.dumps(
                            [{"role": "user", "parts": [{"type": "text", "content": sender_text}]}]
                        ).decode()
                    },
                },
            ],
        }
        if not root:
            span["parentSpanId"] = "99" * 8
        return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})

    cfg = {"process": False, "trace_idle_s": 1.0, "process_every_s": 0.3}
    with Running(db, [SECRET], KEYS, cfg) as srv:
        for key, text, sid, root in (
            ("acme-key-1", "acme's own prompt", "a1" * 8, True),
            ("globex-key-2", "globex planted this", "b1" * 8, False),
        ):
            body = spans(text, sid, root)
            half = len(body) // 2  # as two gzip members (RFC 1952), split mid-document
            r = httpx.post(
                srv.url + "/v1/traces",
                content=gzip.compress(body[:half]) + gzip.compress(body[half:]),
                headers={
                    "authorization": f"Bearer {key}",
                    "content-type": "application/json",
                    "content-encoding": "gzip",
                },
            )
            assert r.status_code == 200, r.text
        assert wait_for(
            lambda: "tracewatch_traces_assembled_total 2.0" in httpx.get(srv.url + "/metrics").text
        )
    got = rows(
        db,
        "SELECT i.account_id, string_agg(s.text, ' | ') FROM interactions i"
        " JOIN steps s USING (interaction_id) GROUP BY 1 ORDER BY 1",
    )
    assert len(got) == 2, got
    by_account = dict(got)
    assert "globex" not in by_account["sender:acme"] and "acme" not in by_account["sender:globex"]


def test_serve_refuses_a_db_that_is_not_a_database(tmp_path: Path) -> None:
    from hostile import tw

    other = tmp_path / "traces.json"
    other.write_bytes(b'{"not": "a database"}')
    r = tw("serve", "--db", other, "--port", "1", env={"TRACEWATCH_WEBHOOK_SECRETS": SECRET})
    assert r.returncode == 2 and b"not a DuckDB database" in r.stderr, r.stderr
    assert other.read_bytes() == b'{"not": "a database"}'


def test_claims_belong_to_their_reviewer(tmp_path: Path) -> None:
    from hostile import rows, tw

    corpus, db = tmp_path / "corpus", tmp_path / "q.duckdb"
    made = tw("corpus", "generate", "--seed", "3", "--interactions", "200",
              "--spam-campaign-accounts", "3", "--out", corpus)  # fmt: skip
    assert made.returncode == 0
    assert tw("run", corpus, "--db", db).returncode == 0
    cid = orjson.loads(tw("queue", "list", "--db", db, "--json").stdout)[0]["case_id"]
    assert tw("queue", "claim", cid, "-r", "rita", "--db", db).returncode == 0
    r = tw("queue", "resolve", cid, "--action", "suspend", "--note", "mine", "-r", "sam",
           "--db", db)  # fmt: skip
    assert r.returncode == 2 and b"in_review by rita" in r.stderr and b"--force" in r.stderr
    r = tw("queue", "claim", cid, "-r", "sam", "--db", db)
    assert r.returncode == 2 and b"in_review by rita" in r.stderr
    r = tw("queue", "resolve", cid, "--action", "suspend", "--note", "rita is away", "-r",
           "sam", "--force", "--db", db)  # fmt: skip
    assert r.returncode == 0, r.stderr
    trail = rows(
        db,
        f"SELECT actor, event, note FROM case_events WHERE case_id = '{cid}' ORDER BY event_id",
    )
    assert trail[1:] == [
        ("rita", "claimed", None),
        ("sam", "taken_over", "from rita: rita is away"),
        ("sam", "resolved", "rita is away"),
    ]
    # the owner closes their own case without --force (and without --reviewer, as before)
    cid2 = orjson.loads(tw("queue", "list", "--status", "open", "--db", db, "--json").stdout)[0]
    assert tw("queue", "claim", cid2["case_id"], "-r", "rita", "--db", db).returncode == 0
    r = tw("queue", "dismiss", cid2["case_id"], "--note", "fine", "--db", db)
    assert r.returncode == 0, r.stderr
