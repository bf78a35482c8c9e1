"""`tracewatch serve` as platforms use it: a real uvicorn process on 127.0.0.1, real HTTP,
Standard Webhooks signatures from the reference library, the real OpenTelemetry SDK and its
OTLP/HTTP exporter, and the DuckDB file read back after the server stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from server_harness import Running, envelope, new_secret, signed

OLD, NEW = new_secret(b"old secret"), new_secret(b"new secret")
KEYS = {"acme": "acme-key-1", "globex": "globex-key-2"}


def rows(db: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + "/v1/interactions", content=body, headers=headers, timeout=30)


def test_signed_batches_stored_and_forgeries_store_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Running(db, [OLD, NEW], KEYS, {"process": False}) as srv:
        batch = b"\n".join(orjson.dumps(envelope("acct-a", n)) for n in range(3))  # NDJSON
        r = post(srv.url, batch, signed(NEW, batch, "msg_batch"))
        assert r.status_code == 200 and r.json()["stored"] == 3, r.text
        one = orjson.dumps(envelope("acct-b", 1))
        r = post(srv.url, one, signed(OLD, one, "msg_old_secret"))  # rotation: old still works
        assert r.status_code == 200 and r.json()["stored"] == 1
        arr = orjson.dumps([envelope("acct-c", 1), envelope("acct-c", 2)])
        assert post(srv.url, arr, signed(NEW, arr, "msg_array")).json()["stored"] == 2

        forged = orjson.dumps(envelope("acct-x", 1))
        r = post(srv.url, forged, signed(new_secret(b"attacker"), forged, "msg_forged"))
        assert r.status_code == 401 and r.json()["reason"] == "bad_signature"
        tampered = signed(NEW, forged, "msg_tampered")
        r = post(srv.url, orjson.dumps(envelope("acct-x", 2)), tampered)
        assert r.status_code == 401
        stale_at = datetime.now(UTC) - timedelta(minutes=10)
        r = post(srv.url, forged, signed(NEW, forged, "msg_stale", at=stale_at))
        assert r.status_code == 401 and r.json()["reason"] == "stale_timestamp"
        r = post(srv.url, forged, {"content-type": "application/json"})
        assert r.status_code == 401 and r.json()["reason"] == "missing_headers"
        # a replayed delivery (same webhook-id, freshly signed) is acknowledged, stores nothing
        again = b"\n".join(orjson.dumps(envelope("acct-r", n)) for n in range(2))
        r = post(srv.url, again, signed(NEW, again, "msg_batch"))
        assert r.status_code == 200 and r.json() == {
            "webhook_id": "msg_batch",
            "duplicate": True,
            "stored": 0,
        }
        metrics = httpx.get(srv.url + "/metrics").text
        assert 'tracewatch_rejected_total{reason="bad_signature"} 2.0' in metrics
        assert 'tracewatch_duplicates_total{kind="delivery"} 1.0' in metrics
    accounts = dict(rows(db, "SELECT account_id, count(*) FROM interactions GROUP BY 1"))
    assert accounts == {"acct-a": 3, "acct-b": 1, "acct-c": 2}
    receipts = {r[0] for r in rows(db, "SELECT webhook_id FROM webhook_receipts")}
    assert receipts == {"msg_batch", "msg_old_secret", "msg_array"}
    assert rows(db, "SELECT count(*) FROM quarantine") == [(0,)]


def test_cap_malformed_and_no_write_before_auth(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Running(db, [NEW], KEYS, {"process": False, "max_body_bytes": 65536}) as srv:
        big = orjson.dumps(envelope("acct-big", 1, pad=100_000))
        r = post(srv.url, big, signed(NEW, big, "msg_big"))
        assert r.status_code == 413 and r.json()["reason"] == "too_large"
        junk = b"this is {not json"
        r = post(srv.url, junk, signed(NEW, junk, "msg_junk"))
        assert r.status_code == 400 and "not JSON" in r.json()["quarantined"][0]["error"]
        mixed = orjson.dumps([envelope("acct-ok", 1), {"acount_id": "typo", "trace": {}}])
        r = post(srv.url, mixed, signed(NEW, mixed, "msg_mixed"))
        body = r.json()
        assert r.status_code == 400 and body["stored"] == 1
        assert body["quarantined"] == [
            {
                "record": 2,
                "reason": "invalid_envelope",
                "error": "account_id: Field required; acount_id: Extra inputs are not permitted",
            }
        ]
        # unauthenticated garbage is refused before anything is written, quarantine included
        r = post(
            srv.url,
            b"garbage",
            {"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        )
        assert r.status_code == 401
        r = httpx.post(
            srv.url + "/v1/traces",
            content=b"garbage",
            headers={"content-type": "application/x-protobuf"},
        )
        assert r.status_code == 401
        r = httpx.post(
            srv.url + "/v1/traces",
            content=b"\xff\x00not protobuf",
            headers={
                "content-type": "application/x-protobuf",
                "authorization": "Bearer acme-key-1",
            },
        )
        assert r.status_code == 400 and r.json()["reason"] == "invalid_otlp"
    q = rows(db, "SELECT source_file, reason FROM quarantine ORDER BY 1")
    assert q == [
        ("otlp:acme", "invalid_otlp"),
        ("webhook:msg_junk", "invalid_json"),
        ("webhook:msg_mixed", "invalid_envelope"),
    ]
    assert rows(db, "SELECT account_id FROM interactions") == [("acct-ok",)]


def test_otlp_partial_success_keeps_the_good_spans(tmp_path: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    db = tmp_path / "s.duckdb"
    auth = {"authorization": "Bearer acme-key-1"}
    good = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "chat gpt-4o"}
    body = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [good, {"spanId": "ef" * 8, "name": "no trace id"}]}]}
        ]
    }
    with Running(db, [NEW], KEYS, {"process": False}) as srv:
        r = httpx.post(
            srv.url + "/v1/traces",
            content=orjson.dumps(body),
            headers={**auth, "content-type": "application/json"},
        )
        assert r.status_code == 200, r.text
        partial = r.json()["partialSuccess"]
        assert partial["rejectedSpans"] == 1 and "traceId and spanId" in partial["errorMessage"]
        # protobuf: the exporter's own response type carries the count
        req = ExportTraceServiceRequest()
        spans = req.resource_spans.add().scope_spans.add().spans
        spans.add(trace_id=b"\x02" * 16, span_id=b"\x01" * 8, name="ok")
        spans.add(span_id=b"\x03" * 8, name="no trace id")
        r = httpx.post(
            srv.url + "/v1/traces",
            content=req.SerializeToString(),
            headers={**auth, "content-type": "application/x-protobuf"},
        )
        assert r.status_code == 200
        reply = ExportTraceServiceResponse.FromString(r.content)
        assert reply.partial_success.rejected_spans == 1
        # a clean request says nothing of partial success
        r = httpx.post(
            srv.url + "/v1/traces",
            content=orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good]}]}]}),
            headers={**auth, "content-type": "application/json"},
        )
        assert r.status_code == 200 and r.json() == {}
    assert rows(db, "SELECT count(*) FROM pending_spans") == [(2,)]
    assert rows(db, "SELECT source_file, reason FROM quarantine") == [
        ("otlp:acme", "invalid_otlp_span"),
        ("otlp:acme", "invalid_otlp_span"),
    ]


def test_otel_sdk_exporter_traces_become_interactions(tmp_path: Path) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

    db = tmp_path / "s.duckdb"
    cfg = {"trace_idle_s": 2.0, "process_every_s": 0.5}
    with Running(db, [NEW], KEYS, cfg) as srv:

        def provider(key: str, **resource: str) -> TracerProvider:
            tp = TracerProvider(resource=Resource.create({"service.name": "shop", **resource}))
            exporter = OTLPSpanExporter(
                endpoint=srv.url + "/v1/traces", headers={"Authorization": f"Bearer {key}"}
            )
            # one export per span as it ends: children first, the root last, over 4 requests
            tp.add_span_processor(SimpleSpanProcessor(exporter))
            return tp

        tp = provider("acme-key-1", **{"user.id": "cust-42"})
        tracer = tp.get_tracer("fake-agent")
        call = {"url": "https://tickets.example/buy?qty=4"}
        with tracer.start_as_current_span(
            "invoke_agent ticket-bot",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "ticket-bot"},
        ):
            for n, (name, args, result) in enumerate(
                [("navigate", call, "Tickets page"), ("type_text", {"text": "4"}, "typed")]
            ):
                with tracer.start_as_current_span(
                    "chat gpt-4o",
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.output.messages": json.dumps(
                            [
                                {
                                    "role": "assistant",
                                    "parts": [
                                        {
                                            "type": "tool_call",
                                            "id": f"call_{n}",
                                            "name": name,
                                            "arguments": args,
                                        }
                                    ],
                                }
                            ]
                        ),
                    },
                ):
                    pass
                with tracer.start_as_current_span(
                    f"execute_tool {name}",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": name,
                        "gen_ai.tool.call.id": f"call_{n}",
                        "gen_ai.tool.call.arguments": json.dumps(args),
                        "gen_ai.tool.call.result": result,
                    },
                ):
                    pass
        root_trace = format(tracer.start_span("x").get_span_context().trace_id, "032x")
        tp.shutdown()

        # a trace whose root never arrives is closed by the idle timeout, account = sender
        tp2 = provider("globex-key-2")
        parent = trace.NonRecordingSpan(
            trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(1))
        )
        with tp2.get_tracer("g").start_as_current_span(
            "execute_tool navigate",
            context=trace.set_span_in_context(parent),
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "navigate",
                "gen_ai.tool.call.arguments": json.dumps({"url": "https://a.example/"}),
            },
        ):
            pass
        tp2.shutdown()

        bad = OTLPSpanExporter(
            endpoint=srv.url + "/v1/traces", headers={"Authorization": "Bearer wrong"}
        )
        tp3 = TracerProvider()
        tracer3 = tp3.get_tracer("t")
        with tracer3.start_as_current_span("invoke_agent") as s:
            pass
        assert bad.export([s]) == SpanExportResult.FAILURE  # type: ignore[list-item]

        deadline = time.time() + 30
        while time.time() < deadline:
            m = httpx.get(srv.url + "/metrics").text
            if "tracewatch_traces_assembled_total 2.0" in m and (
                'tracewatch_queue_depth{kind="interactions"} 0.0' in m
            ):
                break
            time.sleep(0.3)
        else:
            pytest.fail("the two traces were not assembled and processed in 30 s:\n" + m)
        ready = httpx.get(srv.url + "/readyz").json()
        assert ready["ready"] is True, ready
    assert root_trace  # the SDK made ids; the stored interaction is found by account below
    inter = rows(
        db, "SELECT interaction_id, account_id, source_format FROM interactions ORDER BY account_id"
    )
    assert [(a, f) for _, a, f in inter] == [
        ("cust-42", "otel_genai"),
        ("sender:globex", "otel_genai"),
    ]
    steps = rows(
        db,
        "SELECT tool_name, target_url, result FROM steps WHERE interaction_id = ?"
        " AND tool_name IS NOT NULL ORDER BY step_index",
        [inter[0][0]],
    )
    assert steps[0] == ("navigate", "https://tickets.example/buy?qty=4", "Tickets page")
    assert steps[1][0] == "type_text" and steps[1][2] == "typed"
    assert rows(db, "SELECT count(*) FROM pending_spans") == [(0,)]
    # the worker summarized both in the background
    assert rows(
        db,
        "SELECT count(*) FROM interactions i JOIN summaries s USING (content_hash)",
    ) == [(2,)]


def test_backpressure_answers_429_with_retry_after(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    cfg = {"process": False, "max_backlog": 2, "process_every_s": 0.2}
    with Running(db, [NEW], KEYS, cfg) as srv:
        body = b"\n".join(orjson.dumps(envelope("acct-p", n)) for n in range(2))
        assert post(srv.url, body, signed(NEW, body, "msg_1")).status_code == 200
        time.sleep(1.0)  # the worker notices the backlog
        one = orjson.dumps(envelope("acct-p", 9))
        r = post(srv.url, one, signed(NEW, one, "msg_2"))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["reason"] == "backlog"
    assert rows(db, "SELECT count(*) FROM interactions") == [(2,)]
    # after a restart with processing on, the worker picks the backlog up
    with Running(db, [NEW], KEYS, {"process_every_s": 0.2, "max_backlog": 2}) as srv:
        deadline = time.time() + 30
        while time.time() < deadline:
            if (
                'tracewatch_queue_depth{kind="interactions"} 0.0'
                in httpx.get(srv.url + "/metrics").text
            ):
                break
            time.sleep(0.2)
        r = post(srv.url, one, signed(NEW, one, "msg_3"))
        assert r.status_code == 200, r.text
    assert rows(db, "SELECT count(*) FROM interactions") == [(3,)]
    summarized = rows(
        db,
        "SELECT interaction_id FROM interactions i JOIN summaries USING (content_hash) ORDER BY 1",
    )
    assert [r for r in summarized if r != ("acct-p-9",)] == [("acct-p-0",), ("acct-p-1",)]


def test_cli_refuses_a_database_the_server_holds(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with Running(db, [NEW], KEYS, {"process": False}):
        r = subprocess.run(
            [sys.executable, "-m", "tracewatch.monitor.cli", "stats", "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2
        assert "tracewatch serve" in r.stderr and "/v1/interactions" in r.stderr


def tw(*args: object, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWATCH_")}
    if key is not None:
        env["TRACEWATCH_REVIEW_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "tracewatch.monitor.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_reviewers_work_the_queue_through_the_server_that_holds_the_database(
    tmp_path: Path,
) -> None:
    db, corpus = tmp_path / "s.duckdb", tmp_path / "corpus"
    made = tw("corpus", "generate", "--seed", "3", "--interactions", "300",
              "--spam-campaign-accounts", "3", "--out", corpus)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert tw("run", corpus, "--db", db).returncode == 0
    cases = orjson.loads(tw("queue", "list", "--db", db, "--json").stdout)
    camp = next(c for c in cases if c["subject_type"] == "campaign")
    views = [
        ["queue", "list"],
        ["queue", "list", "--status", "open", "--rubric", "spam-posting", "--limit", "2"],
        ["queue", "show", camp["case_id"]],
        ["queue", "export"],
        ["report", "case", "--top"],
        ["report", "case", camp["case_id"][:6]],
        ["report", "account", camp["accounts"][0]],
        ["report", "interaction", camp["evidence"][0]],
        ["report", "overview", "--since", "2026-10-01"],
    ]
    local = [tw(*v, "--db", db, "--json").stdout for v in views]
    srv = Running(db, [NEW], KEYS, {"process": False})
    srv.env["TRACEWATCH_REVIEW_KEYS"] = "rita=rk-rita-1,sam=rk-sam-2"
    with srv:
        assert tw("queue", "list", "--db", db).returncode == 2  # the server holds the file
        # the same documents as a local run, so the same rendering
        for view, want in zip(views, local, strict=True):
            r = tw(*view, "--server", srv.url, "--json", key="rk-rita-1")
            assert r.returncode == 0, (view, r.stderr)
            assert orjson.loads(r.stdout) == orjson.loads(want), view
        shown = tw("report", "case", camp["case_id"], "--server", srv.url, key="rk-sam-2")
        assert shown.returncode == 0 and camp["case_id"] in shown.stdout
        r = tw("queue", "list", "--db", db, "--server", srv.url, key="rk-rita-1")
        assert r.returncode == 2 and "not both" in r.stderr
        # no key, a wrong key: refused before anything is read
        r = tw("queue", "list", "--server", srv.url)
        assert r.returncode == 2 and "TRACEWATCH_REVIEW_KEY" in r.stderr
        r = tw("queue", "list", "--server", srv.url, key="guess")
        assert r.returncode == 2 and "401" in r.stderr
        r = httpx.get(srv.url + "/v1/cases", headers={"authorization": "Bearer rk-sam-2"})
        assert r.status_code == 200 and len(r.json()["cases"]) == len(cases)
        # the key names the reviewer: acting as somebody else is refused and changes nothing
        cid = camp["case_id"]
        r = tw("queue", "claim", cid, "-r", "sam", "--server", srv.url, key="rk-rita-1")
        assert r.returncode == 2 and "403" in r.stderr and "'rita'" in r.stderr
        r = tw("queue", "claim", cid, "--note", "mine", "--server", srv.url, "--json",
               key="rk-rita-1")  # fmt: skip
        assert r.returncode == 0 and orjson.loads(r.stdout)["status"] == "in_review", r.stderr
        r = tw("queue", "resolve", cid, "--action", "suspend", "--note", "one ring",
               "--server", srv.url, key="rk-rita-1")  # fmt: skip
        assert r.returncode == 0 and "actioned" in r.stdout, r.stderr
        r = tw("queue", "dismiss", cid, "--note", "x", "--server", srv.url, key="rk-rita-1")
        assert r.returncode == 2 and "409" in r.stderr and "actioned" in r.stderr
        r = tw("queue", "show", "C-nope", "--server", srv.url, key="rk-rita-1")
        assert r.returncode == 2 and "404" in r.stderr and "no case" in r.stderr
        r = tw("report", "account", "nobody", "--server", srv.url, key="rk-rita-1")
        assert r.returncode == 2 and "no interactions for account" in r.stderr
    trail = rows(
        db,
        "SELECT actor, event, to_status, note FROM case_events WHERE case_id = ? ORDER BY event_id",
        [cid],
    )
    assert trail[1:] == [
        ("rita", "claimed", "in_review", "mine"),
        ("rita", "resolved", "actioned", "one ring"),
    ]


def test_kill_9_mid_load_loses_no_acknowledged_interaction(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    srv = Running(db, [NEW], KEYS, {"process": False}).start()
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker: int) -> None:
        n = 0
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                env = envelope(f"load-{worker}", n)
                body = orjson.dumps(env)
                try:
                    r = client.post(
                        srv.url + "/v1/interactions",
                        content=body,
                        headers=signed(NEW, body, f"w{worker}-{n}"),
                    )
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if r.status_code == 200:
                    with lock:
                        acked.append(env["interaction_id"])
                n += 1

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    srv.kill()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 20
    print(f"{len(acked)} acknowledged before kill -9")
    with Running(db, [NEW], KEYS, {"process": False}) as again:
        assert httpx.get(again.url + "/readyz").status_code == 200
    stored = rows(db, "SELECT interaction_id, count(*) FROM interactions GROUP BY 1")
    counts = dict(stored)
    missing = [i for i in acked if i not in counts]
    assert not missing, f"{len(missing)} acknowledged interactions lost"
    assert all(n == 1 for n in counts.values())


def test_the_last_guard_counts_on_metrics(tmp_path: Path) -> None:
    """A password typed in one delivered session and written in words in the next is
    redacted by the last guard, and /metrics says so."""
    from agent_traces import body, sign_in, visit
    from agent_traces import envelope as trace_envelope

    at = datetime(2026, 10, 5, 9, tzinfo=UTC)
    typed = trace_envelope(
        "acct-g",
        at,
        body(
            "Log in.",
            visit("https://forum.example/login") + sign_in("ola_b9", "Uq1@vineyard"),
            "ok",
        ),
    )
    said = trace_envelope(
        "acct-g",
        at + timedelta(minutes=5),
        body("My usual one is Uq1@vineyard, reuse it.", visit("https://forum.example/t/1"), "ok"),
    )
    db = tmp_path / "g.duckdb"
    with Running(db, [NEW], KEYS) as srv:
        batch = b"\n".join(orjson.dumps(e) for e in (typed, said))
        assert post(srv.url, batch, signed(NEW, batch, "msg_guard")).status_code == 200
        deadline = time.time() + 60
        while time.time() < deadline:
            m = httpx.get(srv.url + "/metrics").text
            if 'tracewatch_secrets_caught{stage="summary"}' in m:
                break
            time.sleep(0.5)
        else:
            pytest.fail("no catch on /metrics in 60 s:\n" + m)
    assert not rows(db, "SELECT text FROM summaries WHERE text LIKE '%Uq1@vineyard%'")
