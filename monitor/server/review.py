"""The reviewers' API: the queue and the reports of the database the server holds.

DuckDB lets one process open a file for writing, and while `serve` runs no other process may
open it at all, so a reviewer's `tracewatch queue` and `tracewatch report` reach the queue
through the server (`--server URL`). Reads run on their own connections beside the writer
(each query sees a consistent snapshot); queue changes run on the writer thread like every
other write. The reviewer recorded in the audit trail is the name of the key that
authenticated, never a field of the request, so one reviewer cannot act as another.

Every answer is the same pydantic model the library builds locally (`Case`, `CaseEvent`,
`CaseReport`, ...), dumped as JSON, so the CLI renders a remote case exactly as a local one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, ValidationError

from tracewatch.monitor.queue import NotOwner, Queue, QueueError, UnknownCase, WrongState
from tracewatch.monitor.reports import build
from tracewatch.monitor.server.auth import AuthError, verify_bearer
from tracewatch.monitor.store import Store
from tracewatch.monitor.windows import parse_when

if TYPE_CHECKING:
    from tracewatch.monitor.server.app import Refusal, Server

T = TypeVar("T")
READERS = 2


class Change(BaseModel):
    """The body of a claim, resolve or dismiss."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = None
    action: str | None = None
    reviewer: str | None = None
    force: bool = False


class Readers:
    """Connections for reads, each used by one thread at a time."""

    def __init__(self, store: Store, n: int = READERS) -> None:
        self.pool: SimpleQueue[Store] = SimpleQueue()
        self.all = [store.cursor() for _ in range(n)]
        for s in self.all:
            self.pool.put(s)
        self.executor = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tracewatch-reader")

    async def run(self, fn: Callable[[Store], T]) -> T:
        def call() -> T:
            store = self.pool.get()
            try:
                return fn(store)
            finally:
                self.pool.put(store)

        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for s in self.all:
            s.close()


def add_review_routes(
    app: FastAPI,
    server: Server,
    answer: Callable[..., Response],
    refused: Callable[[str, Refusal | AuthError], Response],
) -> None:
    from tracewatch.monitor.server.app import Refusal

    config = server.config
    readers = server.readers

    def reviewer(request: Request) -> str:
        if not config.review_keys:
            raise AuthError(
                "not_configured",
                "no review keys are configured (TRACEWATCH_REVIEW_KEYS or review_keys)",
            )
        return verify_bearer(request.headers.get("authorization"), config.review_keys)

    def queue_refusal(exc: QueueError) -> Refusal:
        if isinstance(exc, UnknownCase):
            return Refusal(404, "not_found", str(exc))
        if isinstance(exc, NotOwner):
            return Refusal(403, "not_yours", str(exc))
        if isinstance(exc, WrongState):
            return Refusal(409, "refused", str(exc))
        return Refusal(400, "bad_request", str(exc))  # a malformed request

    async def read(ep: str, request: Request, fn: Callable[[Store], Any]) -> Response:
        try:
            reviewer(request)
            body = await readers.run(fn)
        except (Refusal, AuthError) as exc:
            return refused(ep, exc)
        except QueueError as exc:
            return refused(ep, queue_refusal(exc))
        except build.ReportError as exc:
            return refused(ep, Refusal(404, "not_found", str(exc)))
        except ValueError as exc:  # a bad --since and the like
            return refused(ep, Refusal(400, "bad_request", str(exc)))
        return answer(ep, 200, body)

    @app.get("/v1/cases")
    async def cases(
        request: Request,
        status: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
        rubric: Annotated[list[str], Query()] = [],  # noqa: B006
        account: str | None = None,
        limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
    ) -> Response:
        def fn(store: Store) -> dict[str, Any]:
            found = Queue(store).list(status, rubric, account, limit)
            return {"cases": [c.model_dump(mode="json") for c in found]}

        return await read("/v1/cases", request, fn)

    @app.get("/v1/cases/export")
    async def export(request: Request) -> Response:
        def fn(store: Store) -> dict[str, Any]:
            # as `queue export` prints it: orjson's datetimes, str() for the rest
            return {"cases": orjson.loads(orjson.dumps(Queue(store).export(), default=str))}

        return await read("/v1/cases/export", request, fn)

    @app.get("/v1/cases/{case_id}")
    async def case(request: Request, case_id: str) -> Response:
        def fn(store: Store) -> dict[str, Any]:
            q = Queue(store)
            return {
                "case": q.get(case_id).model_dump(mode="json"),
                "events": [e.model_dump(mode="json") for e in q.events(case_id)],
            }

        return await read("/v1/cases/{id}", request, fn)

    @app.post("/v1/cases/{case_id}/{change}")
    async def change(
        request: Request, case_id: str, change: Literal["claim", "resolve", "dismiss"]
    ) -> Response:
        ep = f"/v1/cases/{{id}}/{change}"
        try:
            who = reviewer(request)
            try:
                body = Change.model_validate_json((await request.body()) or b"{}")
            except ValidationError as exc:
                raise Refusal(400, "bad_request", f"body: {exc.errors()[0]['msg']}") from None
            if body.reviewer not in (None, who):
                raise Refusal(
                    403,
                    "not_yours",
                    f"this key is reviewer {who!r}; it cannot act as {body.reviewer!r}",
                )
            kw: dict[str, Any] = {"reviewer": who, "note": body.note, "force": body.force}
            if change == "resolve":
                kw["action"] = body.action or ""
            elif body.action is not None:
                raise Refusal(400, "bad_request", f"{change} takes no action")

            def apply() -> dict[str, Any]:
                return getattr(Queue(server.store), change)(case_id, **kw).model_dump(mode="json")

            done = await server.write(apply)
        except (Refusal, AuthError) as exc:
            return refused(ep, exc)
        except QueueError as exc:
            return refused(ep, queue_refusal(exc))
        return answer(ep, 200, {"case": done})

    async def report_read(ep: str, request: Request, fn: Callable[[Store], BaseModel]) -> Response:
        def guarded(store: Store) -> dict[str, Any]:
            try:
                return {"report": fn(store).model_dump(mode="json")}
            except build.ReportEmpty as exc:
                return {"empty": True, "guidance": str(exc)}

        return await read(ep, request, guarded)

    @app.get("/v1/reports/case")
    async def report_case(
        request: Request, case_id: str | None = None, top: bool = False
    ) -> Response:
        return await report_read(
            "/v1/reports/case",
            request,
            lambda s: build.build_case(s, case_id, top),
        )

    @app.get("/v1/reports/interaction")
    async def report_interaction(request: Request, interaction_id: str) -> Response:
        return await report_read(
            "/v1/reports/interaction", request, lambda s: build.build_interaction(s, interaction_id)
        )

    @app.get("/v1/reports/overview")
    async def report_overview(
        request: Request, since: str | None = None, top: Annotated[int, Query(ge=1)] = 10
    ) -> Response:
        return await report_read(
            "/v1/reports/overview",
            request,
            lambda s: build.build_overview(s, parse_when(since) if since else None, top),
        )

    @app.get("/v1/reports/account")
    async def report_account(request: Request, account: str) -> Response:
        return await report_read(
            "/v1/reports/account", request, lambda s: build.build_account(s, account)
        )
