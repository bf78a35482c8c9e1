"""What the server writes, each in one DuckDB transaction on the writer's connection.

A delivery's interactions, its quarantined records and its receipt commit together, so a
webhook-id seen once is never stored twice and an acknowledged delivery is never half there.
OTLP spans wait in `pending_spans` (durable, keyed by trace and span id, so a retried export
adds nothing) until their trace is complete; the trace's interaction is written and its spans
removed in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from tracewatch.monitor.ingest import IngestOptions, IngestReport, Record, build_interactions
from tracewatch.monitor.models import Interaction
from tracewatch.monitor.server.otlp import SpanRow, assemble, identity
from tracewatch.monitor.store import Rejected, Store, transaction

# a trace whose root span has arrived still waits this long for stragglers of the same export
ROOT_GRACE_S = 1.0


@dataclass
class Delivery:
    """What became of one webhook delivery."""

    duplicate: bool = False
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Built:
    """Records turned into interactions or rejections, before the writer sees them."""

    items: list[tuple[Interaction, str | None, int | None]]
    rejected: list[Rejected]
    records: int


def build(records: list[Record]) -> Built:
    """CPU work done off the writer thread: adapt every record, or say why it cannot be."""
    items: list[tuple[Interaction, str | None, int | None]] = []
    rejected: list[Rejected] = []
    report = IngestReport()
    for rec in records:
        inters, rej = build_interactions(rec, IngestOptions(), report)
        if rej is not None:
            rejected.append(rej)
        items.extend((i, rec.source, rec.line) for i in inters)
    return Built(items, rejected, len(records))


class Inbox:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.con = store.con

    def _tx(self, fn: Any) -> Any:
        with transaction(self.con):
            return fn()

    def deliver(self, webhook_id: str, sender: str, built: Built) -> Delivery:
        return self.deliver_many([(webhook_id, sender, built)])[0]

    def deliver_many(self, deliveries: list[tuple[str, str, Built]]) -> list[Delivery]:
        """Several deliveries in one transaction (group commit): one fsync for all of them,
        and none of them is acknowledged before it."""

        def work() -> list[Delivery]:
            seen = {
                r[0]
                for r in self.con.execute(
                    "SELECT webhook_id FROM webhook_receipts WHERE webhook_id IN"
                    " (SELECT unnest(?))",
                    [[d[0] for d in deliveries]],
                ).fetchall()
            }
            fresh = []
            first: list[bool] = []
            for webhook_id, sender, built in deliveries:
                first.append(webhook_id not in seen)
                if first[-1]:
                    seen.add(webhook_id)
                    fresh.append((webhook_id, sender, built))
            # one write for the whole group: per-statement cost, not the commit, dominates
            res = self.store.write_batch_in_transaction(
                [i for _, _, b in fresh for i in b.items],
                [r for _, _, b in fresh for r in b.rejected],
            )
            # an id counts as stored for the first delivery of the group that carries it
            unclaimed = set(res.inserted_ids)
            outcome: dict[str, Delivery] = {}
            for webhook_id, _, built in fresh:
                d = Delivery(
                    records=built.records,
                    quarantined=[
                        {"record": r.line, "reason": r.reason, "error": r.error}
                        for r in built.rejected
                    ],
                )
                for inter, _, _ in built.items:
                    if inter.interaction_id in unclaimed:
                        unclaimed.discard(inter.interaction_id)
                        d.stored += 1
                    else:
                        d.duplicates += 1
                outcome[webhook_id] = d
            if fresh:
                now = datetime.now(UTC)
                receipts = pa.table(
                    {
                        "webhook_id": [w for w, _, _ in fresh],
                        "sender": [s for _, s, _ in fresh],
                        "received_at": pa.array([now] * len(fresh), pa.timestamp("us", tz="UTC")),
                        "records": pa.array([b.records for _, _, b in fresh], pa.int32()),
                        "stored": pa.array([outcome[w].stored for w, _, _ in fresh], pa.int32()),
                        "quarantined": pa.array([len(b.rejected) for _, _, b in fresh], pa.int32()),
                    }
                )
                self.con.register("_tw_receipts", receipts)
                try:
                    self.con.execute("INSERT INTO webhook_receipts SELECT * FROM _tw_receipts")
                finally:
                    self.con.unregister("_tw_receipts")
            return [
                outcome[w] if is_first else Delivery(duplicate=True, records=b.records)
                for (w, _, b), is_first in zip(deliveries, first, strict=True)
            ]

        return self._tx(work)

    def quarantine(self, *rejected: Rejected) -> None:
        self.store.write_batch([], list(rejected))

    def add_spans(self, rows: list[SpanRow], sender: str) -> int:
        """Keep spans until their trace completes; returns how many were new."""
        if not rows:
            return 0
        now = datetime.now(UTC)
        table = pa.table(
            {
                "sender": [sender] * len(rows),
                "trace_id": [r.trace_id for r in rows],
                "span_id": [r.span_id for r in rows],
                "is_root": [r.is_root for r in rows],
                "received_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
                "resource": [orjson.dumps(r.resource).decode() for r in rows],
                "scope": [orjson.dumps(r.scope).decode() for r in rows],
                "span": [orjson.dumps(r.span).decode() for r in rows],
            }
        )

        def work() -> int:
            self.con.register("_tw_spans", table)
            try:
                before = self.con.execute("SELECT count(*) FROM pending_spans").fetchall()[0][0]
                self.con.execute(
                    "INSERT OR IGNORE INTO pending_spans SELECT DISTINCT ON (trace_id, span_id)"
                    " sender, trace_id, span_id, is_root, received_at, resource::JSON,"
                    " scope::JSON, span::JSON FROM _tw_spans"
                )
                after = self.con.execute("SELECT count(*) FROM pending_spans").fetchall()[0][0]
            finally:
                self.con.unregister("_tw_spans")
            return int(after - before)

        return self._tx(work)

    def close_traces(
        self, idle_s: float, identity_keys: list[str], now: datetime | None = None
    ) -> tuple[int, int, int]:
        """Turn every complete trace into an interaction: (traces, stored, quarantined).

        Complete means its root span arrived (and nothing more came for ROOT_GRACE_S), or
        nothing arrived for `idle_s`: a trace whose root never comes is still kept.
        """
        now = now or datetime.now(UTC)
        # A trace is one sender's: another sender's spans with the same trace id are another
        # trace, so no sender can add steps to (or complete) someone else's interaction.
        ready = self.con.execute(
            "SELECT sender, trace_id FROM pending_spans GROUP BY sender, trace_id"
            " HAVING (bool_or(is_root) AND max(received_at) <= ?) OR max(received_at) <= ?"
            " ORDER BY min(received_at) LIMIT 500",
            [now - timedelta(seconds=ROOT_GRACE_S), now - timedelta(seconds=idle_s)],
        ).fetchall()
        if not ready:
            return 0, 0, 0
        records = []
        for sender, trace_id in ready:
            spans = self.con.execute(
                "SELECT resource, scope, span FROM pending_spans WHERE sender = ? AND trace_id = ?"
                " ORDER BY received_at, span_id",
                [sender, trace_id],
            ).fetchall()
            doc = assemble(spans)
            account = identity(doc, identity_keys) or f"sender:{sender}"
            envelope = {"account_id": account, "format": "otel_genai", "trace": doc}
            records.append(
                Record(source=f"otlp:{sender}:{trace_id}", line=None, raw=None, doc=envelope)
            )
        built = build(records)
        keys = [f"{s}\x1f{t}" for s, t in ready]

        def work() -> tuple[int, int, int]:
            res = self.store.write_batch_in_transaction(built.items, built.rejected)
            self.con.execute(
                "DELETE FROM pending_spans WHERE sender || chr(31) || trace_id"
                " IN (SELECT unnest(?))",
                [keys],
            )
            return len(keys), res.inserted, len(built.rejected) + res.conflicts

        return self._tx(work)

    def backlog(self, backend: str) -> tuple[int, int, float]:
        """(interactions not yet summarized by `backend`, spans waiting, seconds the oldest
        unsummarized interaction has waited)."""
        row = self.con.execute(
            "SELECT count(*), min(ingested_at) FROM interactions i WHERE NOT EXISTS"
            " (SELECT 1 FROM summaries s WHERE s.content_hash = i.content_hash"
            " AND s.backend = ?) AND NOT EXISTS (SELECT 1 FROM summary_failures f"
            " WHERE f.content_hash = i.content_hash AND f.backend = ?)",
            [backend, backend],
        ).fetchall()[0]
        spans = self.con.execute("SELECT count(*) FROM pending_spans").fetchall()[0][0]
        lag = (datetime.now(UTC) - row[1]).total_seconds() if row[1] else 0.0
        return int(row[0]), int(spans), max(0.0, lag)
