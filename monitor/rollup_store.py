"""Rollup reads and writes on the DuckDB store: planning, members, partials, aggregates.

Every write is keyed by content: a partial by (aggregate, input hash, level, chunk), an
aggregate by (kind, subject, window, summarizer). Writing the same thing twice replaces it
with an identical row, which is what lets a killed rollup resume without duplicates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa

from tracewatch.monitor.aggregates import Aggregate, RollupFacets, specific_target
from tracewatch.monitor.store import Store, transaction
from tracewatch.monitor.windows import origin_for
from tracewatch.summarizers.models import Facets

TIME_BUCKET_S = 300


def digest(*parts: object) -> str:
    return hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class SummaryKey:
    """Which interaction summaries a rollup reads, and which rollup texts it writes."""

    backend: str
    model: str
    prompt_version: str
    rollup_prompt_version: str


@dataclass(frozen=True)
class WindowScope:
    """Which account windows a rollup covers: their size, a time range, some accounts."""

    seconds: int
    since: datetime | None
    until: datetime | None
    accounts: Sequence[str]
    # only windows with a change logged after this (`rollup_changes.seq`); None: every window
    changed_after: int | None = None


def _bucket(column: str, seconds: int) -> str:
    """SQL for the start (epoch seconds) of the window of `seconds` that holds `column`:
    the same integer division as `windows.bucket_start`."""
    origin = origin_for(seconds)
    return f"((floor(epoch({column}))::BIGINT - {origin}) // {seconds}) * {seconds} + {origin}"


def _changed(account: str, when: str, seconds: int) -> str:
    """SQL: a change was logged (after the `?` parameter) in this account's window of
    `seconds` around `when`."""
    return (
        f"EXISTS (SELECT 1 FROM rollup_changes c WHERE c.seq > ? AND c.account_id = {account}"
        f" AND {_bucket('c.started_at', seconds)} = {_bucket(when, seconds)})"
    )


@dataclass
class Member:
    ref: str
    text: str
    facets: RollupFacets


def account_ranges(counts: Sequence[tuple[str, int]], most: int) -> list[tuple[str, str]]:
    """Cut accounts (in order, with a count each) into contiguous (first, last) ranges of at
    most `most` counted items; an account with more than that is a range of its own."""
    ranges: list[tuple[str, str]] = []
    first: str | None = None
    last = ""
    n = 0
    for account, c in counts:
        if first is not None and n + c > most:
            ranges.append((first, last))
            first, n = None, 0
        if first is None:
            first = account
        last = account
        n += c
    if first is not None:
        ranges.append((first, last))
    return ranges


def _subject_range(lo: str | None, hi: str | None) -> tuple[str, list[str]]:
    """The aggregates' subjects from `lo` to `hi` (a planning round), or all of them."""
    if lo is None or hi is None:
        return "", []
    return " AND subject BETWEEN ? AND ?", [lo, hi]


def _table(name_values: dict[str, Sequence[Any]]) -> pa.Table:
    return pa.table({k: pa.array(list(v), pa.string()) for k, v in name_values.items()})


# Moves with any change to how campaigns are detected from the same window aggregates, so
# that an upgrade detects them again instead of keeping what the old code found.
CAMPAIGN_VERSION = "campaigns-v5"


class RollupStore:
    """The rollup's view of a Store. Not thread-safe; the workflow uses it from one loop."""

    def __init__(self, store: Store, key: SummaryKey) -> None:
        self.store = store
        self.con = store.con
        self.key = key

    # -- planning -----------------------------------------------------------------------

    def _window_filter(
        self, scope: WindowScope, lo: str | None = None, hi: str | None = None
    ) -> tuple[str, list[str], list[Any]]:
        """The window-start expression, and the WHERE terms and params that select
        interactions by time, by account, and by an account range (a planning batch)."""
        seconds, since, until, accounts = scope.seconds, scope.since, scope.until, scope.accounts
        origin = origin_for(seconds)
        ws = _bucket("i.started_at", seconds)
        where: list[str] = []
        params: list[Any] = []
        if scope.changed_after is not None:
            where.append(_changed("i.account_id", "i.started_at", seconds))
            params.append(scope.changed_after)
        if since:
            where.append(f"{ws} >= ?")
            params.append((int(since.timestamp()) - origin) // seconds * seconds + origin)
        if until:
            where.append(f"{ws} <= ?")
            params.append((int(until.timestamp()) - origin) // seconds * seconds + origin)
        if accounts:
            where.append("i.account_id IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(accounts))
        if lo is not None and hi is not None:
            where.append("i.account_id BETWEEN ? AND ?")
            params += [lo, hi]
        return ws, where, params

    def window_batches(self, scope: WindowScope, max_windows: int) -> list[tuple[str, str]]:
        """Account ranges (first, last) of about `max_windows` account windows each, in
        account order: the window phase plans, reduces and writes one range at a time, so
        its state never holds every window of the corpus."""
        ws, where, params = self._window_filter(scope)
        rows = self.con.execute(
            f"SELECT i.account_id, count(DISTINCT {ws}) FROM interactions i"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " GROUP BY 1 ORDER BY 1",
            params,
        ).fetchall()
        return account_ranges(rows, max_windows)

    def window_groups(
        self, scope: WindowScope, lo: str | None = None, hi: str | None = None
    ) -> list[tuple[str, datetime, list[str], list[int], str]]:
        """(account, window start, member ids in time order, their text lengths, content md5),
        of the accounts from `lo` to `hi` when given."""
        ws, where, fparams = self._window_filter(scope, lo, hi)
        params = [self.key.backend, self.key.model, self.key.prompt_version, *fparams]
        sql = (
            f"SELECT i.account_id, {ws} AS ws,"
            " list(i.interaction_id ORDER BY i.started_at, i.interaction_id),"
            " list(coalesce(length(s.text), 0) ORDER BY i.started_at, i.interaction_id),"
            " md5(string_agg(i.interaction_id || ':' || i.content_hash || ':' ||"
            "  (s.content_hash IS NOT NULL)::VARCHAR, ',' ORDER BY i.interaction_id))"
            " FROM interactions i LEFT JOIN summaries s ON s.content_hash = i.content_hash"
            " AND s.backend = ? AND s.model = ? AND s.prompt_version = ?"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        rows = self.con.execute(sql, params).fetchall()
        return [(a, datetime.fromtimestamp(w, UTC), ids, lens, h) for a, w, ids, lens, h in rows]

    def stored_hashes(
        self, kind: str, window_size: str, lo: str | None = None, hi: str | None = None
    ) -> dict[str, str]:
        """Aggregate id -> input hash of what is stored, of subjects `lo` to `hi` when given."""
        k = self.key
        rng, bounds = _subject_range(lo, hi)
        rows = self.con.execute(
            "SELECT aggregate_id, input_hash FROM aggregates WHERE kind = ? AND window_size = ?"
            " AND backend = ? AND model = ? AND prompt_version = ?" + rng,
            [kind, window_size, k.backend, k.model, k.rollup_prompt_version, *bounds],
        ).fetchall()
        return dict(rows)

    def campaign_inputs(self, window_size: str) -> str:
        """The digest of the account windows campaigns are detected on, as they are now."""
        k = self.key
        windows = self.store.aggregates_digest(
            ["account_window"],
            window_size=window_size,
            backend=k.backend,
            model=k.model,
            prompt_version=k.rollup_prompt_version,
        )
        return f"{CAMPAIGN_VERSION}:{windows}"

    def last_campaign_inputs(self, window_size: str) -> str | None:
        """The digest they were last detected on: equal to `campaign_inputs` means the
        campaign step has nothing new to read."""
        k = self.key
        last = self.con.execute(
            "SELECT digest FROM campaign_inputs WHERE window_size = ? AND backend = ?"
            " AND model = ? AND prompt_version = ?",
            [window_size, k.backend, k.model, k.rollup_prompt_version],
        ).fetchall()
        return last[0][0] if last else None

    def remember_campaign_inputs(self, window_size: str, digest_now: str) -> None:
        k = self.key
        self.con.execute(
            "INSERT OR REPLACE INTO campaign_inputs VALUES (?, ?, ?, ?, ?)",
            [window_size, k.backend, k.model, k.rollup_prompt_version, digest_now],
        )

    def window_aggregates(
        self,
        window_size: str,
        lo: str | None = None,
        hi: str | None = None,
        changed: tuple[int, int] | None = None,
    ) -> list[tuple[str, str, datetime, str, int]]:
        """(aggregate id, account, window start, input hash, text length) of account windows,
        of accounts `lo` to `hi` when given; with `changed` (after seq, span seconds), only
        those in a span of an account where a change was logged since."""
        k = self.key
        rng, bounds = _subject_range(lo, hi)
        only, extra = self._changed_spans(changed)
        return self.con.execute(
            "SELECT aggregate_id, subject, window_start, input_hash, length(text)"
            " FROM aggregates WHERE kind = 'account_window' AND window_size = ?"
            " AND backend = ? AND model = ? AND prompt_version = ?"
            + rng
            + only
            + " ORDER BY subject, window_start",
            [window_size, k.backend, k.model, k.rollup_prompt_version, *bounds, *extra],
        ).fetchall()

    @staticmethod
    def _changed_spans(changed: tuple[int, int] | None) -> tuple[str, list[Any]]:
        if changed is None:
            return "", []
        after, seconds = changed
        return " AND " + _changed("subject", "window_start", seconds), [after]

    def window_aggregate_batches(
        self, window_size: str, max_windows: int, changed: tuple[int, int] | None = None
    ) -> list[tuple[str, str]]:
        """Account ranges of about `max_windows` window aggregates each (the period phase's
        planning batches); with `changed`, of the changed spans' windows only."""
        k = self.key
        only, extra = self._changed_spans(changed)
        rows = self.con.execute(
            "SELECT subject, count(*) FROM aggregates WHERE kind = 'account_window'"
            " AND window_size = ? AND backend = ? AND model = ? AND prompt_version = ?"
            + only
            + " GROUP BY 1 ORDER BY 1",
            [window_size, k.backend, k.model, k.rollup_prompt_version, *extra],
        ).fetchall()
        return account_ranges(rows, max_windows)

    def count_aggregates(self, kind: str, window_size: str) -> int:
        k = self.key
        return self.con.execute(
            "SELECT count(*) FROM aggregates WHERE kind = ? AND window_size = ?"
            " AND backend = ? AND model = ? AND prompt_version = ?",
            [kind, window_size, k.backend, k.model, k.rollup_prompt_version],
        ).fetchall()[0][0]

    def partial_lengths(self, ids: Sequence[str]) -> dict[str, int]:
        self.con.register("_tw_ids", _table({"partial_id": ids}))
        try:
            rows = self.con.execute(
                "SELECT partial_id, length(text) FROM rollup_partials"
                " JOIN _tw_ids USING (partial_id)"
            ).fetchall()
        finally:
            self.con.unregister("_tw_ids")
        return dict(rows)

    # -- members ------------------------------------------------------------------------

    def load_members(self, member_kind: str, refs: Sequence[str]) -> dict[str, Member]:
        """Members by ref, with their texts and facets; one query for a whole shard.

        One query per shard, not per window: each query scans the tables once, so per-window
        queries would make the rollup quadratic in the corpus.
        """
        if member_kind == "interaction":
            return self._load_interactions(refs)
        table = "aggregates" if member_kind == "aggregate" else "rollup_partials"
        col = "aggregate_id" if member_kind == "aggregate" else "partial_id"
        self.con.register("_tw_ids", _table({col: refs}))
        try:
            rows = self.con.execute(
                f"SELECT {col}, text, facets FROM {table} JOIN _tw_ids USING ({col})"
            ).fetchall()
        finally:
            self.con.unregister("_tw_ids")
        by = {r[0]: Member(r[0], r[1], RollupFacets.model_validate_json(r[2])) for r in rows}
        missing = [r for r in refs if r not in by]
        if missing:
            raise LookupError(f"{len(missing)} {member_kind} member(s) missing, e.g. {missing[0]}")
        return by

    def _load_interactions(self, refs: Sequence[str]) -> dict[str, Member]:
        k = self.key
        self.con.register("_tw_ids", _table({"interaction_id": refs}))
        try:
            rows = self.con.execute(
                "SELECT i.interaction_id, i.account_id, i.started_at, s.text, s.facets"
                " FROM interactions i JOIN _tw_ids USING (interaction_id)"
                " LEFT JOIN summaries s ON s.content_hash = i.content_hash"
                " AND s.backend = ? AND s.model = ? AND s.prompt_version = ?",
                [k.backend, k.model, k.prompt_version],
            ).fetchall()
        finally:
            self.con.unregister("_tw_ids")
        by: dict[str, Member] = {}
        for iid, account, started, text, facets in rows:
            parsed = Facets.model_validate_json(facets) if facets else None
            by[iid] = Member(
                iid,
                text or "(no summary: summarizing this interaction failed)",
                RollupFacets.from_summary(iid, account, started, parsed),
            )
        return by

    # -- writes -------------------------------------------------------------------------

    def write_partials(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        now = datetime.now(UTC)
        table = pa.table(
            {
                "partial_id": [r["partial_id"] for r in rows],
                "aggregate_id": [r["aggregate_id"] for r in rows],
                "input_hash": [r["input_hash"] for r in rows],
                "level": pa.array([r["level"] for r in rows], pa.int32()),
                "chunk": pa.array([r["chunk"] for r in rows], pa.int32()),
                "members": pa.array([r["members"] for r in rows], pa.list_(pa.string())),
                "text": [r["text"] for r in rows],
                "facets": [r["facets"] for r in rows],
                "tokens_in": pa.array([r["tokens_in"] for r in rows], pa.int64()),
                "tokens_out": pa.array([r["tokens_out"] for r in rows], pa.int64()),
                "created_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
            }
        )
        self._replace("rollup_partials", "partial_id", table)

    def final_partials(self, jobs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """For each job, its top-level partial (the finished summary) and the token totals."""
        self.con.register(
            "_tw_jobs",
            _table(
                {
                    "aggregate_id": [j["aggregate_id"] for j in jobs],
                    "input_hash": [j["input_hash"] for j in jobs],
                }
            ),
        )
        try:
            rows = self.con.execute(
                "SELECT p.aggregate_id, p.level, p.text, p.facets,"
                " sum(p.tokens_in) OVER w, sum(p.tokens_out) OVER w"
                " FROM rollup_partials p JOIN _tw_jobs j USING (aggregate_id, input_hash)"
                " WINDOW w AS (PARTITION BY p.aggregate_id)"
                " QUALIFY row_number() OVER (PARTITION BY p.aggregate_id ORDER BY p.level DESC)"
                " = 1"
            ).fetchall()
        finally:
            self.con.unregister("_tw_jobs")
        return {
            r[0]: {
                "levels": r[1] + 1,
                "text": r[2],
                "facets": r[3],
                "tokens_in": r[4],
                "tokens_out": r[5],
            }
            for r in rows
        }

    def write_aggregates(self, aggs: Sequence[Aggregate], features: bool) -> None:
        """Replace these aggregates (and their campaign features), drop their stale partials."""
        if not aggs:
            return
        now = datetime.now(UTC)
        ts = pa.timestamp("us", tz="UTC")
        guard = self.store.guard
        table = pa.table(
            {
                "aggregate_id": [a.aggregate_id for a in aggs],
                "kind": [a.kind for a in aggs],
                "subject": [a.subject for a in aggs],
                "window_size": [a.window for a in aggs],
                "window_start": pa.array([a.window_start for a in aggs], ts),
                "window_end": pa.array([a.window_end for a in aggs], ts),
                "accounts": pa.array([a.accounts for a in aggs], pa.list_(pa.string())),
                "input_hash": [a.input_hash for a in aggs],
                "levels": pa.array([a.levels for a in aggs], pa.int32()),
                "backend": [a.backend for a in aggs],
                "model": [a.model for a in aggs],
                "prompt_version": [a.prompt_version for a in aggs],
                "text": [guard.clean(a.text, "aggregate") for a in aggs],
                "facets": [guard.clean_json(a.facets.model_dump_json(), "aggregate") for a in aggs],
                "signals": [orjson.dumps(a.signals).decode() for a in aggs],
                "links": [
                    guard.clean_json(
                        orjson.dumps([link.model_dump() for link in a.links]).decode(),
                        "aggregate",
                    )
                    for a in aggs
                ],
                "tokens_in": pa.array([a.tokens_in for a in aggs], pa.int64()),
                "tokens_out": pa.array([a.tokens_out for a in aggs], pa.int64()),
                "created_at": pa.array([now] * len(aggs), ts),
            }
        )
        feats = _features(aggs) if features else None
        try:
            with transaction(self.con):
                self.con.register("_tw_agg", table)
                self.con.execute(
                    "DELETE FROM aggregates"
                    " WHERE aggregate_id IN (SELECT aggregate_id FROM _tw_agg)"
                )
                self.con.execute("INSERT INTO aggregates SELECT * FROM _tw_agg")
                guard.flush()
                self.con.execute(
                    "DELETE FROM rollup_partials p USING _tw_agg a"
                    " WHERE p.aggregate_id = a.aggregate_id AND p.input_hash <> a.input_hash"
                )
                if feats is not None:
                    self.con.execute(
                        "DELETE FROM rollup_features"
                        " WHERE aggregate_id IN (SELECT aggregate_id FROM _tw_agg)"
                    )
                    self.con.register("_tw_feat", feats)
                    self.con.execute("INSERT INTO rollup_features SELECT * FROM _tw_feat")
        finally:
            self.con.unregister("_tw_agg")
            if feats is not None:
                self.con.unregister("_tw_feat")

    def retire(self, kind: str, window_size: str, keep: set[str]) -> int:
        """Delete aggregates of a kind that the latest run no longer produces (old campaigns)."""
        stale = [a for a in self.stored_hashes(kind, window_size) if a not in keep]
        if stale:
            self.con.register("_tw_ids", _table({"aggregate_id": stale}))
            try:
                with transaction(self.con):
                    for t in ("aggregates", "rollup_partials"):
                        self.con.execute(
                            f"DELETE FROM {t}"
                            " WHERE aggregate_id IN (SELECT aggregate_id FROM _tw_ids)"
                        )
            finally:
                self.con.unregister("_tw_ids")
        return len(stale)

    def _replace(self, table: str, key: str, data: pa.Table) -> None:
        self.con.register("_tw_rows", data)
        try:
            with transaction(self.con):
                self.con.execute(f"DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM _tw_rows)")
                self.con.execute(f"INSERT INTO {table} SELECT * FROM _tw_rows")
        finally:
            self.con.unregister("_tw_rows")


def _features(aggs: Sequence[Aggregate]) -> pa.Table:
    """What campaign detection joins on, one row per (window, evidence key)."""
    from tracewatch.monitor.near_duplicates import band_keys

    cols: dict[str, list[Any]] = {
        k: [] for k in ("aggregate_id", "account_id", "kind", "key", "n", "ids", "text", "minhash")
    }

    def add(agg: Aggregate, kind: str, key: str, n: int, ids: list[str], text=None, sig=None):
        cols["aggregate_id"].append(agg.aggregate_id)
        cols["account_id"].append(agg.subject)
        cols["kind"].append(kind)
        cols["key"].append(key)
        cols["n"].append(n)
        cols["ids"].append(ids)
        cols["text"].append(text)
        cols["minhash"].append(sig)

    for agg in aggs:
        f = agg.facets
        for t, ev in f.targets.items():
            if specific_target(t):
                add(agg, "target", t, ev.n, ev.ids)
        for i, ev in f.identities.items():
            add(agg, "identity", i, ev.n, ev.ids)
        for c, ev in f.contacts.items():  # a shared drop address or card ties like a login
            add(agg, "identity", c, ev.n, ev.ids)
        for slot, ev in f.engagements.items():
            add(agg, "engage", slot, ev.n, ev.ids)
        for g in f.content:
            for band in band_keys(g.minhash):
                add(agg, "content", band, g.n, g.ids, g.text, g.minhash)
        buckets: dict[int, int] = {}
        for t in f.starts:
            buckets[t // TIME_BUCKET_S] = buckets.get(t // TIME_BUCKET_S, 0) + 1
        for b, n in buckets.items():
            add(agg, "time", str(b), n, [])
    return pa.table(
        {
            "aggregate_id": pa.array(cols["aggregate_id"], pa.string()),
            "account_id": pa.array(cols["account_id"], pa.string()),
            "kind": pa.array(cols["kind"], pa.string()),
            "key": pa.array(cols["key"], pa.string()),
            "n": pa.array(cols["n"], pa.int32()),
            "ids": pa.array(cols["ids"], pa.list_(pa.string())),
            "text": pa.array(cols["text"], pa.string()),
            "minhash": pa.array(cols["minhash"], pa.list_(pa.uint64())),
        }
    )
