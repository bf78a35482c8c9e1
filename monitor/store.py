"""The DuckDB store: one file holding interactions, steps and the quarantine.

Writes are bulk (Arrow tables registered with DuckDB, never row-by-row INSERTs) and happen in
one transaction per batch, so a crash leaves either the whole batch or none of it. Interaction
ids are the primary key: storing the same interaction twice stores it once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from tracewatch.monitor.models import Interaction

DEFAULT_DB = "tracewatch.duckdb"


def default_db_path() -> str:
    return os.environ.get("TRACEWATCH_DB") or DEFAULT_DB


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which file and why."""


# Forward-only migrations: (version, description, statements). Never edit a shipped entry;
# append a new one.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "interactions, steps and quarantine",
        [
            """CREATE TABLE interactions (
                interaction_id VARCHAR PRIMARY KEY,
                account_id VARCHAR NOT NULL,
                source_format VARCHAR NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                ended_at TIMESTAMPTZ,
                agent VARCHAR,
                model VARCHAR,
                n_steps INTEGER NOT NULL,
                content_hash VARCHAR NOT NULL,
                domains VARCHAR[],
                metadata JSON,
                source_file VARCHAR,
                source_line BIGINT,
                ingested_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE steps (
                interaction_id VARCHAR NOT NULL,
                step_index INTEGER NOT NULL,
                actor VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                text VARCHAR,
                tool_name VARCHAR,
                call_id VARCHAR,
                action VARCHAR,
                arguments JSON,
                target_url VARCHAR,
                target_domain VARCHAR,
                target_app VARCHAR,
                result VARCHAR,
                is_error BOOLEAN NOT NULL,
                ts TIMESTAMPTZ,
                attachments JSON
            )""",
            """CREATE TABLE quarantine (
                quarantine_id VARCHAR PRIMARY KEY,
                source_file VARCHAR,
                line BIGINT,
                adapter VARCHAR,
                reason VARCHAR NOT NULL,
                error VARCHAR NOT NULL,
                raw BLOB,
                raw_size BIGINT,
                raw_sha256 VARCHAR,
                received_at TIMESTAMPTZ NOT NULL
            )""",
            "CREATE INDEX interactions_account_time ON interactions (account_id, started_at)",
        ],
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


@dataclass
class Rejected:
    """A record that could not be read, kept with where it came from and why."""

    source_file: str | None
    line: int | None
    adapter: str | None
    reason: str
    error: str
    raw: bytes | None

    @property
    def quarantine_id(self) -> str:
        digest = hashlib.sha256(self.raw or self.error.encode()).hexdigest()
        key = f"{self.source_file}\x1f{self.line}\x1f{digest}"
        return "q_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass
class BatchResult:
    inserted: int
    duplicates: int
    conflicts: int
    quarantined: int
    quarantine_repeats: int


_INTERACTION_SCHEMA = pa.schema(
    [
        ("interaction_id", pa.string()),
        ("account_id", pa.string()),
        ("source_format", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("ended_at", pa.timestamp("us", tz="UTC")),
        ("agent", pa.string()),
        ("model", pa.string()),
        ("n_steps", pa.int32()),
        ("content_hash", pa.string()),
        ("domains", pa.list_(pa.string())),
        ("metadata", pa.string()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)
_STEP_SCHEMA = pa.schema(
    [
        ("interaction_id", pa.string()),
        ("step_index", pa.int32()),
        ("actor", pa.string()),
        ("kind", pa.string()),
        ("text", pa.string()),
        ("tool_name", pa.string()),
        ("call_id", pa.string()),
        ("action", pa.string()),
        ("arguments", pa.string()),
        ("target_url", pa.string()),
        ("target_domain", pa.string()),
        ("target_app", pa.string()),
        ("result", pa.string()),
        ("is_error", pa.bool_()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("attachments", pa.string()),
    ]
)
_QUARANTINE_SCHEMA = pa.schema(
    [
        ("quarantine_id", pa.string()),
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("adapter", pa.string()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("raw", pa.binary()),
        ("raw_size", pa.int64()),
        ("raw_sha256", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _conflict(item: tuple[Interaction, str | None, int | None], stored_hash: str) -> Rejected:
    inter, source_file, line = item
    return Rejected(
        source_file,
        line,
        inter.source_format,
        "conflicting_duplicate",
        f"interaction_id {inter.interaction_id!r} is already stored with different content "
        f"(stored content hash {stored_hash[:12]}, this one {inter.content_hash[:12]})",
        orjson.dumps(inter.model_dump(mode="json")),
    )


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=str).decode()


def _str(value: Any) -> str | None:
    """Text for a VARCHAR column; lone surrogates from bad JSON escapes are replaced, not fatal."""
    if value is None:
        return None
    s = str(value)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "replace").decode("utf-8")
    return s


class Store:
    """One DuckDB file. Open it, use it, close it (or use it as a context manager)."""

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = str(path or default_db_path())
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(
                f"{self.path}: no such database. Ingest something first "
                "(tracewatch ingest PATH --db ...) or point --db / TRACEWATCH_DB at an "
                "existing one."
            )
        try:
            self.con = duckdb.connect(self.path, read_only=read_only)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise StoreError(
                    f"{self.path}: the database is in use by another tracewatch process "
                    "(DuckDB allows one writer). Stop it, use another --db, or send the "
                    f"traces through its webhook instead. ({msg.splitlines()[0]})"
                ) from exc
            raise StoreError(f"{self.path}: cannot open the database: {msg}") from exc
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc
        if not read_only:
            self.migrate()
        else:
            self._check_version()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # -- schema -------------------------------------------------------------------------

    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()
        if not exists or not exists[0]:
            return 0
        row = self.con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0) if row else 0

    def _check_version(self) -> int:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema v{current} is newer than this tracewatch "
                f"understands (v{SCHEMA_VERSION}); upgrade tracewatch."
            )
        return current

    def migrate(self) -> None:
        current = self._check_version()
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ)"
        )
        for version, description, statements in MIGRATIONS:
            if version <= current:
                continue
            self.con.execute("BEGIN TRANSACTION")
            try:
                for sql in statements:
                    self.con.execute(sql)
                self.con.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    [version, description, datetime.now(UTC)],
                )
                self.con.execute("COMMIT")
            except Exception:
                self.con.execute("ROLLBACK")
                raise

    # -- writes -------------------------------------------------------------------------

    def write_batch(
        self,
        items: Sequence[tuple[Interaction, str | None, int | None]],
        rejected: Sequence[Rejected] = (),
    ) -> BatchResult:
        """Store interactions (with their source file and line) and rejects, atomically."""
        now = datetime.now(UTC)
        rejected = list(rejected)
        self.con.execute("BEGIN TRANSACTION")
        try:
            known: dict[str, str] = {}
            if items:
                ids = pa.table(
                    {"interaction_id": pa.array([i[0].interaction_id for i in items], pa.string())}
                )
                self.con.register("_tw_ids", ids)
                known = dict(
                    self.con.execute(
                        "SELECT DISTINCT i.interaction_id, i.content_hash FROM interactions i "
                        "JOIN _tw_ids b USING (interaction_id)"
                    ).fetchall()
                )
                self.con.unregister("_tw_ids")
            new: list[tuple[Interaction, str | None, int | None]] = []
            conflicts = 0
            for item in items:
                inter = item[0]
                stored = known.get(inter.interaction_id)
                if stored is None:
                    known[inter.interaction_id] = inter.content_hash
                    new.append(item)
                elif stored != inter.content_hash:
                    # Same id, different content: dropping it as a duplicate would lose data.
                    conflicts += 1
                    rejected.append(_conflict(item, stored))
            if new:
                self._insert_interactions(new, now)
            inserted = len(new)
            q_new, q_repeat = self._insert_quarantine(rejected, now)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        return BatchResult(
            inserted=inserted,
            duplicates=len(items) - inserted - conflicts,
            conflicts=conflicts,
            quarantined=q_new,
            quarantine_repeats=q_repeat,
        )

    def _insert_interactions(
        self, new: list[tuple[Interaction, str | None, int | None]], now: datetime
    ) -> None:
        icols: dict[str, list[Any]] = {f.name: [] for f in _INTERACTION_SCHEMA}
        scols: dict[str, list[Any]] = {f.name: [] for f in _STEP_SCHEMA}
        for inter, source_file, line in new:
            domains = sorted({s.target_domain for s in inter.steps if s.target_domain})
            for name, value in (
                ("interaction_id", inter.interaction_id),
                ("account_id", inter.account_id),
                ("source_format", inter.source_format),
                ("started_at", inter.started_at),
                ("ended_at", inter.ended_at),
                ("agent", inter.agent),
                ("model", inter.model),
                ("n_steps", len(inter.steps)),
                ("content_hash", inter.content_hash),
                ("domains", domains),
                ("metadata", _json(inter.metadata)),
                ("source_file", source_file),
                ("source_line", line),
                ("ingested_at", now),
            ):
                icols[name].append(value)
            for s in inter.steps:
                scols["interaction_id"].append(inter.interaction_id)
                scols["step_index"].append(s.index)
                scols["actor"].append(s.actor.value)
                scols["kind"].append(s.kind.value)
                scols["text"].append(_str(s.text))
                scols["tool_name"].append(_str(s.tool_name))
                scols["call_id"].append(_str(s.call_id))
                scols["action"].append(_str(s.action))
                scols["arguments"].append(_json(s.arguments))
                scols["target_url"].append(_str(s.target_url))
                scols["target_domain"].append(s.target_domain)
                scols["target_app"].append(_str(s.target_app))
                scols["result"].append(_str(s.result))
                scols["is_error"].append(s.is_error)
                scols["ts"].append(s.timestamp)
                scols["attachments"].append(
                    _json([a.model_dump() for a in s.attachments]) if s.attachments else None
                )
        itable = pa.table(icols, schema=_INTERACTION_SCHEMA)
        stable = pa.table(scols, schema=_STEP_SCHEMA)
        self.con.register("_tw_interactions", itable)
        self.con.register("_tw_steps", stable)
        try:
            self.con.execute("INSERT INTO interactions SELECT * FROM _tw_interactions")
            self.con.execute("INSERT INTO steps SELECT * FROM _tw_steps")
        finally:
            self.con.unregister("_tw_interactions")
            self.con.unregister("_tw_steps")

    def _insert_quarantine(self, rejected: Sequence[Rejected], now: datetime) -> tuple[int, int]:
        if not rejected:
            return 0, 0
        rows: dict[str, Rejected] = {}
        for r in rejected:
            rows.setdefault(r.quarantine_id, r)
        ids = pa.table({"quarantine_id": pa.array(list(rows), pa.string())})
        self.con.register("_tw_qids", ids)
        existing = {
            r[0]
            for r in self.con.execute(
                "SELECT q.quarantine_id FROM quarantine q JOIN _tw_qids b USING (quarantine_id)"
            ).fetchall()
        }
        self.con.unregister("_tw_qids")
        new = [(k, r) for k, r in rows.items() if k not in existing]
        if new:
            cols: dict[str, list[Any]] = {f.name: [] for f in _QUARANTINE_SCHEMA}
            for qid, r in new:
                raw = r.raw or b""
                for name, value in (
                    ("quarantine_id", qid),
                    ("source_file", r.source_file),
                    ("line", r.line),
                    ("adapter", r.adapter),
                    ("reason", r.reason),
                    ("error", r.error),
                    ("raw", r.raw),
                    ("raw_size", len(raw)),
                    ("raw_sha256", hashlib.sha256(raw).hexdigest()),
                    ("received_at", now),
                ):
                    cols[name].append(value)
            self.con.register("_tw_q", pa.table(cols, schema=_QUARANTINE_SCHEMA))
            try:
                self.con.execute("INSERT INTO quarantine SELECT * FROM _tw_q")
            finally:
                self.con.unregister("_tw_q")
        return len(new), len(rejected) - len(new)

    # -- reads --------------------------------------------------------------------------

    def stats(self, top_accounts: int = 20) -> dict[str, Any]:
        one = lambda sql: self.con.execute(sql).fetchone()[0]  # noqa: E731
        by_format = dict(
            self.con.execute(
                "SELECT source_format, count(*) FROM interactions GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
        )
        by_day = {
            str(day): n
            for day, n in self.con.execute(
                "SELECT CAST(timezone('UTC', started_at) AS DATE) AS d, count(*) "
                "FROM interactions GROUP BY 1 ORDER BY 1"
            ).fetchall()
        }
        by_account = [
            {"account_id": a, "interactions": n, "first": f.isoformat(), "last": last.isoformat()}
            for a, n, f, last in self.con.execute(
                "SELECT account_id, count(*), min(started_at), max(started_at) FROM interactions "
                "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?",
                [top_accounts],
            ).fetchall()
        ]
        quarantine_by_reason = dict(
            self.con.execute(
                "SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
        )
        return {
            "db": self.path,
            "schema_version": self.schema_version(),
            "interactions": one("SELECT count(*) FROM interactions"),
            "steps": one("SELECT count(*) FROM steps"),
            "accounts": one("SELECT count(DISTINCT account_id) FROM interactions"),
            "quarantined": one("SELECT count(*) FROM quarantine"),
            "quarantined_by_reason": quarantine_by_reason,
            "by_format": by_format,
            "by_day": by_day,
            "top_accounts": by_account,
        }

    def quarantine(self, limit: int | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT quarantine_id, source_file, line, adapter, reason, error, raw_size, "
            "raw_sha256, received_at FROM quarantine ORDER BY received_at, source_file, line"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def quarantined_raw(self, quarantine_id: str) -> bytes | None:
        row = self.con.execute(
            "SELECT raw FROM quarantine WHERE quarantine_id = ?", [quarantine_id]
        ).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def interaction_ids(self) -> Iterable[str]:
        return (
            r[0] for r in self.con.execute("SELECT interaction_id FROM interactions").fetchall()
        )
