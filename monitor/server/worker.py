"""The background worker: closes complete OTLP traces, then summarizes, rolls up and judges
what is new, on its own thread and its own connection to the database.

Everything it does is keyed by content and incremental (summaries cached by content hash,
rollups by input hash and checkpointed, verdicts by input), so after a crash or restart the
first pass simply carries on from what the database holds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any

from tracewatch.monitor.guard import catches
from tracewatch.monitor.server.config import ServeConfig
from tracewatch.monitor.server.inbox import Inbox
from tracewatch.monitor.server.metrics import Metrics
from tracewatch.monitor.store import Store

log = logging.getLogger("tracewatch.server")


class Worker:
    def __init__(
        self,
        config: ServeConfig,
        writer: Executor,
        inbox: Inbox,
        store: Store,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.writer = writer
        self.inbox = inbox
        self.store = store  # the worker's own connection (Store.cursor())
        self.metrics = metrics
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._main, name="tracewatch-worker", daemon=True)
        self.backlog = 0
        self.last_pass: float | None = None
        self.last_error: str | None = None
        self.stage_errors: dict[str, str | None] = {}
        self.failures: dict[str, int] = {}
        self.lag_s = 0.0
        self._seen: datetime | None = None
        self._first = True

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)

    def alive(self) -> bool:
        return self.thread.is_alive()

    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.writer.submit(fn, *args).result()

    def _main(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        backend = judge = None
        if self.config.process:
            from tracewatch.rubrics.registry import create_judge
            from tracewatch.summarizers.redaction import Redactor, load_key
            from tracewatch.summarizers.registry import create

            backend = create(self.config.summarizer, Redactor(load_key(self.store.path)), {})
            judge = create_judge("signals", backend)
        try:
            while not self.stop.is_set():
                await self.tick(backend, judge)
                failing = {k: v for k, v in self.stage_errors.items() if v}
                self.last_error = "; ".join(f"{k}: {v}" for k, v in failing.items()) or None
                self.metrics.processed.labels("error" if failing else "ok").inc()
                self.last_pass = time.time()
                self.stop.wait(self.config.process_every_s)
        finally:
            if backend is not None:
                await backend.aclose()

    async def _stage(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one stage; its failure is recorded and the next stage still runs, so a trace
        that cannot be closed never stops what was already stored from being processed."""
        try:
            got = fn()
            if asyncio.iscoroutine(got):
                got = await got
        except Exception as exc:  # keep serving; say what failed, try again next tick
            self.stage_errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            self.metrics.stage_errors.labels(name).set(1)
            log.exception("background stage %s failed; retrying next pass", name)
            return None
        self.stage_errors[name] = None
        self.metrics.stage_errors.labels(name).set(0)
        return got

    async def tick(self, backend: Any, judge: Any) -> None:
        closed = await self._stage(
            "assemble",
            lambda: self._write(
                self.inbox.close_traces, self.config.trace_idle_s, self.config.identity_attributes
            ),
        )
        if closed and closed[0]:
            traces, stored, quarantined = closed
            self.metrics.traces.inc(traces)
            self.metrics.accepted.labels("interaction").inc(stored)
            if quarantined:
                self.metrics.rejected.labels("otlp_trace_unreadable").inc(quarantined)
            log.info(
                "assembled %d trace(s): %d stored, %d quarantined", traces, stored, quarantined
            )
        if backend is not None and (self._changed() or self.stage_errors.get("process")):
            await self._stage("process", lambda: self.process(backend, judge))
        await self._stage("report", self._report)

    def _report(self) -> None:
        waiting, spans, lag = self.inbox_backlog()
        self.backlog = waiting + spans
        self.lag_s = lag
        self.metrics.queue_depth.labels("interactions").set(waiting)
        self.metrics.queue_depth.labels("spans").set(spans)
        self.metrics.lag.set(lag)
        for stage, n in catches(self.store.con).items():
            self.metrics.secrets_caught.labels(stage).set(n)
        self.failures = self.store.failure_counts()
        for stage, n in self.failures.items():
            self.metrics.failures.labels(stage).set(n)

    def inbox_backlog(self) -> tuple[int, int, float]:
        return Inbox(self.store).backlog(self.config.summarizer)

    def _changed(self) -> bool:
        latest = self.store.con.execute("SELECT max(ingested_at) FROM interactions").fetchall()
        now = latest[0][0]
        changed = self._first or (now is not None and now != self._seen)
        self._first = False
        self._seen = now
        return changed

    async def process(self, backend: Any, judge: Any) -> None:
        from tracewatch.monitor.judge import JudgeOptions, run_judge
        from tracewatch.monitor.rollup import RollupOptions, run_rollup
        from tracewatch.monitor.summarize import summarize_store

        t = time.perf_counter()
        summ = await summarize_store(self.store, backend)
        roll = await run_rollup(self.store, backend, RollupOptions(window=self.config.window))
        jopts = JudgeOptions(backend=backend.name, model=backend.model)
        judged = await run_judge(self.store, judge, jopts)
        log.info(
            "processed: %d summarized (%d cached, %d failed), %d window(s) and %d campaign(s) "
            "rolled up, %d flagged, %d case(s) opened, in %.1fs",
            summ.summarized,
            summ.cached,
            summ.failed,
            roll.windows_rolled,
            roll.campaigns_rolled,
            judged.flagged,
            judged.queue.opened,
            time.perf_counter() - t,
        )
