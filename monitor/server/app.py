"""The ASGI app: webhook and OTLP receivers, the reviewers' API, health, readiness, metrics.

Order of work for every POST: size cap (413), authentication (401), backpressure (429),
parse (400, the payload quarantined), then the write on the single writer thread, and only
after its commit the 2xx. Nothing touches the database before authentication succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tracewatch.monitor.ingest import Record, _keep, _parse, _why
from tracewatch.monitor.limits import LimitExceeded, default_limits, too_deep, value_depth
from tracewatch.monitor.server.auth import AuthError, verify_bearer, verify_webhook
from tracewatch.monitor.server.config import ServeConfig
from tracewatch.monitor.server.inbox import Built, Delivery, Inbox, build
from tracewatch.monitor.server.metrics import Metrics
from tracewatch.monitor.server.otlp import OtlpError, decode, split_spans
from tracewatch.monitor.server.review import Readers, add_review_routes
from tracewatch.monitor.server.worker import Worker
from tracewatch.monitor.store import Rejected, Store

log = logging.getLogger("tracewatch.server")
GROUP_MAX = 256


class Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers


class Server:
    """The state one app holds: the database, its writer thread, the worker, the metrics."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.store = Store(config.db)
        self.inbox = Inbox(self.store)
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracewatch-writer")
        self.waiting = 0
        self.pending: asyncio.Queue[tuple[str, str, Built, asyncio.Future[Delivery]]] = (
            asyncio.Queue()
        )
        self.worker = Worker(config, self.writer, self.inbox, self.store.cursor(), self.metrics)
        self.readers = Readers(self.store)

    def _admit(self) -> None:
        """Refuse rather than queue writes without bound."""
        if self.waiting >= self.config.max_waiting:
            raise Refusal(
                429,
                "backpressure",
                "too many requests waiting to be written",
                **{"Retry-After": "1"},
            )

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a write on the single writer thread."""
        self._admit()
        self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)
        finally:
            self.waiting -= 1

    async def deliver(self, webhook_id: str, sender: str, built: Built) -> Delivery:
        """Queue a delivery for the next group commit and wait for that commit."""
        self._admit()
        fut: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self.waiting += 1
        try:
            await self.pending.put((webhook_id, sender, built, fut))
            return await fut
        finally:
            self.waiting -= 1

    async def group_commit(self) -> None:
        """Drain waiting deliveries into one transaction each round (at most GROUP_MAX)."""
        loop = asyncio.get_running_loop()
        while True:
            group = [await self.pending.get()]
            while not self.pending.empty() and len(group) < GROUP_MAX:
                group.append(self.pending.get_nowait())
            args = [(w, s, b) for w, s, b, _ in group]
            try:
                results = await loop.run_in_executor(self.writer, self.inbox.deliver_many, args)
            except Exception:
                # one bad delivery must not fail the others: fall back to one transaction each
                results = []
                for a in args:
                    try:
                        results.append(
                            await loop.run_in_executor(self.writer, self.inbox.deliver, *a)
                        )
                    except Exception as exc:
                        log.exception("writing delivery %s failed", a[0])
                        results.append(exc)
            for (_, _, _, fut), res in zip(group, results, strict=True):
                if fut.done():
                    continue
                if isinstance(res, Exception):
                    fut.set_exception(res)
                else:
                    fut.set_result(res)

    def check_backlog(self) -> None:
        if self.worker.backlog >= self.config.max_backlog:
            retry = str(max(5, int(self.config.process_every_s * 2)))
            raise Refusal(
                429,
                "backlog",
                f"{self.worker.backlog} interactions and spans are waiting to be processed "
                f"(limit {self.config.max_backlog})",
                **{"Retry-After": retry},
            )

    def close(self) -> None:
        self.worker.close()
        self.writer.shutdown(wait=True)
        self.readers.close()
        self.worker.store.close()
        self.store.close()


async def read_body(request: Request, cap: int) -> bytes:
    """The body, refused with 413 as soon as it passes the cap (also after decompression)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise Refusal(413, "too_large", f"body of {declared} bytes is over the {cap}-byte cap")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > cap:
            raise Refusal(413, "too_large", f"body is over the {cap}-byte cap")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        try:
            body = inflate(body, cap, gzip=encoding == "gzip")
        except zlib.error as exc:
            raise Refusal(
                400, "bad_encoding", f"cannot {encoding}-decode the body: {exc}"
            ) from None
        except OverflowError:
            raise Refusal(
                413, "too_large", f"decompressed body is over the {cap}-byte cap"
            ) from None
    elif encoding not in ("", "identity"):
        raise Refusal(415, "bad_encoding", f"unsupported content-encoding {encoding!r}")
    return body


def inflate(body: bytes, cap: int, gzip: bool) -> bytes:
    """Every member of a gzip body (RFC 1952 lets a body be several, one after another), or a
    deflate body, never holding more than `cap` inflated bytes; past it, OverflowError."""
    out: list[bytes] = []
    n = 0
    rest = body
    while True:
        d = zlib.decompressobj(wbits=31 if gzip else 15)
        chunk = d.decompress(rest, cap + 1 - n)
        n += len(chunk)
        out.append(chunk)
        if n > cap or d.unconsumed_tail:
            raise OverflowError
        if not d.eof:
            raise zlib.error("the compressed body ends early (truncated)")
        rest = d.unused_data
        if not gzip or not rest.strip(b"\x00"):  # trailing zero padding is allowed
            return b"".join(out)


def webhook_records(body: bytes, webhook_id: str) -> list[Record]:
    """One envelope, a JSON array of them, or NDJSON; anything else is one unreadable record.

    Each record is checked against the input limits on its own, so one too deep or too large
    is quarantined (400 naming it) while the others are stored.
    """
    source = f"webhook:{webhook_id}"
    limits = default_limits()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        lines = [ln for ln in body.splitlines() if ln.strip()]
        if len(lines) < 2:
            return [Record(source, 1, _keep(body), error=f"body is not JSON or NDJSON: {exc}")]
        out = []
        for n, line in enumerate(lines, 1):
            try:
                out.append(Record(source, n, line, doc=_parse(line, limits)))
            except (orjson.JSONDecodeError, LimitExceeded) as e:
                out.append(
                    Record(
                        source,
                        n,
                        _keep(line),
                        error=f"line {n}: {_why(e)}",
                        reason=e.reason if isinstance(e, LimitExceeded) else None,
                    )
                )
        return out
    items = doc if isinstance(doc, list) else [doc]
    deep = too_deep(body, limits)
    out = []
    for n, item in enumerate(items, 1):
        if deep and value_depth(item, limits.max_depth) > limits.max_depth:
            # kept with the whole body (the only bytes it has), named by its place in it
            out.append(
                Record(
                    source,
                    n,
                    _keep(body),
                    error=f"record {n} is nested past the limit of {limits.max_depth} levels "
                    "(TRACEWATCH_LIMITS max_depth)",
                    reason="too_deep",
                )
            )
        elif len(body) > limits.max_record_bytes and len(items) > 1 and _too_large(item, limits):
            out.append(
                Record(
                    source,
                    n,
                    _keep(body),
                    error=f"record {n} is over the {limits.max_record_bytes}-byte limit for "
                    "one record (TRACEWATCH_LIMITS max_record_bytes)",
                    reason="too_large",
                )
            )
        else:
            out.append(Record(source, n, None, doc=item))
    return out


def _too_large(item: Any, limits: Any) -> bool:
    return len(orjson.dumps(item, default=str)) > limits.max_record_bytes


def create_app(config: ServeConfig) -> FastAPI:
    server = Server(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.worker.start()
        committer = asyncio.create_task(server.group_commit())
        log.info("tracewatch serving %s", config.db)
        try:
            yield
        finally:
            committer.cancel()
            server.close()

    app = FastAPI(title="tracewatch receiver", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = server
    m = server.metrics

    def answer(endpoint: str, status: int, content: dict[str, Any], **headers: str) -> Response:
        m.requests.labels(endpoint, str(status)).inc()
        return JSONResponse(content, status_code=status, headers=headers or None)

    def refused(endpoint: str, exc: Refusal | AuthError) -> Response:
        if isinstance(exc, AuthError):
            m.rejected.labels(exc.reason).inc()
            return answer(endpoint, 401, {"error": str(exc), "reason": exc.reason})
        m.rejected.labels(exc.reason).inc()
        return answer(
            endpoint, exc.status, {"error": str(exc), "reason": exc.reason}, **exc.headers
        )

    @app.post("/v1/interactions")
    async def interactions(request: Request) -> Response:
        ep = "/v1/interactions"
        try:
            body = await read_body(request, config.max_body_bytes)
            m.bytes.labels(ep).inc(len(body))
            if not config.webhook_secrets:
                raise AuthError("not_configured", "no webhook secrets are configured")
            webhook_id = verify_webhook(
                request.headers, body, config.webhook_secrets, config.tolerance_s
            )
            server.check_backlog()
            built = await asyncio.to_thread(build, webhook_records(body, webhook_id))
            result = await server.deliver(webhook_id, "webhook", built)
        except (Refusal, AuthError) as exc:
            return refused(ep, exc)
        if result.duplicate:
            m.duplicates.labels("delivery").inc()
            return answer(ep, 200, {"webhook_id": webhook_id, "duplicate": True, "stored": 0})
        m.accepted.labels("interaction").inc(result.stored)
        m.duplicates.labels("interaction").inc(result.duplicates)
        content = {
            "webhook_id": webhook_id,
            "duplicate": False,
            "records": result.records,
            "stored": result.stored,
            "duplicates": result.duplicates,
        }
        if result.quarantined:
            for q in result.quarantined:
                m.rejected.labels(q["reason"]).inc()
            n = len(result.quarantined)
            return answer(
                ep,
                400,
                {
                    **content,
                    "error": f"{n} of {result.records} record(s) could not be read; they are "
                    "kept in the quarantine (tracewatch quarantine list), the rest were stored",
                    "quarantined": result.quarantined,
                },
            )
        return answer(ep, 200, content)

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        ep = "/v1/traces"
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        proto = "protobuf" in ctype
        try:
            body = await read_body(request, config.max_body_bytes)
            m.bytes.labels(ep).inc(len(body))
            if not config.otlp_keys:
                raise AuthError("not_configured", "no OTLP sender keys are configured")
            sender = verify_bearer(request.headers.get("authorization"), config.otlp_keys)
            server.check_backlog()
            try:
                rows, bad = await asyncio.to_thread(lambda: split_spans(decode(body, ctype)))
            except OtlpError as exc:
                rej = Rejected(
                    f"otlp:{sender}", None, "otlp", "invalid_otlp", str(exc), _keep(body)
                )
                await server.write(server.inbox.quarantine, rej)
                raise Refusal(400, "invalid_otlp", f"{exc} (kept in the quarantine)") from None
            if bad:  # kept with the reason, each span on its own, in one write
                rejected = [
                    Rejected(
                        f"otlp:{sender}", None, "otlp", "invalid_otlp_span",
                        f"{b.where}: {b.error}", _keep(orjson.dumps(b.span, default=str)),
                    )
                    for b in bad
                ]  # fmt: skip
                await server.write(server.inbox.quarantine, *rejected)
            new = await server.write(server.inbox.add_spans, rows, sender)
        except (Refusal, AuthError) as exc:
            return refused(ep, exc)
        m.accepted.labels("span").inc(new)
        m.duplicates.labels("span").inc(len(rows) - new)
        m.requests.labels(ep, "200").inc()
        message = ""
        if bad:
            m.rejected.labels("invalid_otlp_span").inc(len(bad))
            message = (
                f"{len(bad)} span(s) rejected, kept in the quarantine; first: "
                f"{bad[0].where}: {bad[0].error}"
            )
        if proto:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTracePartialSuccess,
                ExportTraceServiceResponse,
            )

            reply = ExportTraceServiceResponse()
            if bad:
                reply.partial_success.CopyFrom(
                    ExportTracePartialSuccess(rejected_spans=len(bad), error_message=message)
                )
            return Response(reply.SerializeToString(), media_type="application/x-protobuf")
        if bad:
            return JSONResponse(
                {"partialSuccess": {"rejectedSpans": len(bad), "errorMessage": message}}
            )
        return JSONResponse({})

    add_review_routes(app, server, answer, refused)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        problems = []
        try:
            await server.write(lambda: server.store.con.execute("SELECT 1").fetchall())
        except Exception as exc:
            problems.append(f"database: {exc}")
        if not server.worker.alive():
            problems.append("background worker is not running")
        if server.worker.last_error:
            problems.append(f"last background pass failed: {server.worker.last_error}")
        body = {
            "ready": not problems,
            "problems": problems,
            "backlog": server.worker.backlog,
            "lag_s": round(server.worker.lag_s, 1),
            "failed_items": server.worker.failures,
            "last_pass_age_s": (
                round(time.time() - server.worker.last_pass, 1) if server.worker.last_pass else None
            ),
            "db": config.db,
        }
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)

    return app
