"""The DuckDB store: one file holding interactions, steps and the quarantine.

Writes are bulk (Arrow tables registered with DuckDB, never row-by-row INSERTs) and happen in
one transaction per batch, so a crash leaves either the whole batch or none of it. Interaction
ids are the primary key: storing the same interaction twice stores it once.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from tracewatch.monitor.guard import Guard
from tracewatch.monitor.models import Interaction, Step
from tracewatch.summarizers.models import Summary

DEFAULT_DB = "tracewatch.duckdb"


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN, then COMMIT if the block finishes or ROLLBACK if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def default_db_path() -> str:
    return os.environ.get("TRACEWATCH_DB") or DEFAULT_DB


MEMORY_ENV = "TRACEWATCH_MEMORY_LIMIT"


def duckdb_config() -> dict[str, str]:
    """DuckDB settings from the environment: `TRACEWATCH_MEMORY_LIMIT` (e.g. 512MB, 2GB)
    caps DuckDB's buffer memory, which otherwise may grow to 80% of the machine's RAM; past it
    DuckDB spills to a temp folder beside the database. It caps DuckDB's share only: most of a
    large run's memory is the rollup's Python objects (README, "Where the memory goes")."""
    limit = os.environ.get(MEMORY_ENV, "").strip()
    if limit and not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B|B)?", limit, re.I):
        raise StoreError(f"{MEMORY_ENV}={limit!r}: give a size such as 512MB or 2GB")
    return {"memory_limit": limit} if limit else {}


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
    (
        2,
        "summary cache keyed by content, backend, model and prompt version; failures",
        [
            """CREATE TABLE summaries (
                content_hash VARCHAR NOT NULL,
                backend VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                prompt_version VARCHAR NOT NULL,
                text VARCHAR NOT NULL,
                facets JSON NOT NULL,
                tokens_in INTEGER NOT NULL,
                tokens_out INTEGER NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (content_hash, backend, model, prompt_version)
            )""",
            """CREATE TABLE summary_failures (
                content_hash VARCHAR NOT NULL,
                backend VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                prompt_version VARCHAR NOT NULL,
                error VARCHAR NOT NULL,
                failed_at TIMESTAMPTZ NOT NULL
            )""",
        ],
    ),
    (
        3,
        "rollups: aggregates, the partial summaries behind them, campaign features, runs",
        [
            """CREATE TABLE aggregates (
                aggregate_id VARCHAR PRIMARY KEY,
                kind VARCHAR NOT NULL,
                subject VARCHAR NOT NULL,
                window_size VARCHAR NOT NULL,
                window_start TIMESTAMPTZ NOT NULL,
                window_end TIMESTAMPTZ NOT NULL,
                accounts VARCHAR[] NOT NULL,
                input_hash VARCHAR NOT NULL,
                levels INTEGER NOT NULL,
                backend VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                prompt_version VARCHAR NOT NULL,
                text VARCHAR NOT NULL,
                facets JSON NOT NULL,
                signals JSON NOT NULL,
                links JSON NOT NULL,
                tokens_in BIGINT NOT NULL,
                tokens_out BIGINT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE rollup_partials (
                partial_id VARCHAR PRIMARY KEY,
                aggregate_id VARCHAR NOT NULL,
                input_hash VARCHAR NOT NULL,
                level INTEGER NOT NULL,
                chunk INTEGER NOT NULL,
                members VARCHAR[] NOT NULL,
                text VARCHAR NOT NULL,
                facets JSON NOT NULL,
                tokens_in BIGINT NOT NULL,
                tokens_out BIGINT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE rollup_features (
                aggregate_id VARCHAR NOT NULL,
                account_id VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                key VARCHAR NOT NULL,
                n INTEGER NOT NULL,
                ids VARCHAR[] NOT NULL,
                text VARCHAR,
                minhash UBIGINT[]
            )""",
            """CREATE TABLE rollup_runs (
                run_id VARCHAR PRIMARY KEY,
                params_hash VARCHAR NOT NULL,
                params JSON NOT NULL,
                status VARCHAR NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                finished_at TIMESTAMPTZ,
                report JSON
            )""",
        ],
    ),
    (
        4,
        "judging: verdicts, the enforcement queue's cases and their append-only audit trail",
        [
            """CREATE TABLE verdicts (
                verdict_id VARCHAR PRIMARY KEY,
                aggregate_id VARCHAR NOT NULL,
                aggregate_kind VARCHAR NOT NULL,
                input_hash VARCHAR NOT NULL,
                subject VARCHAR NOT NULL,
                accounts VARCHAR[] NOT NULL,
                window_size VARCHAR NOT NULL,
                window_start TIMESTAMPTZ NOT NULL,
                window_end TIMESTAMPTZ NOT NULL,
                rubric_id VARCHAR NOT NULL,
                rubric_version INTEGER NOT NULL,
                judge VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                threshold DOUBLE NOT NULL,
                score DOUBLE NOT NULL,
                flagged BOOLEAN NOT NULL,
                verdict JSON NOT NULL,
                created_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE cases (
                case_id VARCHAR PRIMARY KEY,
                dedupe_key VARCHAR NOT NULL UNIQUE,
                subject_type VARCHAR NOT NULL,
                subject VARCHAR NOT NULL,
                accounts VARCHAR[] NOT NULL,
                rubric_id VARCHAR NOT NULL,
                rubric_version INTEGER NOT NULL,
                window_size VARCHAR NOT NULL,
                window_start TIMESTAMPTZ NOT NULL,
                window_end TIMESTAMPTZ NOT NULL,
                severity VARCHAR NOT NULL,
                score DOUBLE NOT NULL,
                confidence DOUBLE NOT NULL,
                priority DOUBLE NOT NULL,
                status VARCHAR NOT NULL,
                verdict_id VARCHAR NOT NULL,
                aggregate_id VARCHAR NOT NULL,
                input_hash VARCHAR NOT NULL,
                judge VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                threshold DOUBLE NOT NULL,
                rationale VARCHAR NOT NULL,
                evidence VARCHAR[] NOT NULL,
                quotes JSON NOT NULL,
                signals JSON NOT NULL,
                reviewer VARCHAR,
                action VARCHAR,
                note VARCHAR,
                opened_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                closed_at TIMESTAMPTZ
            )""",
            "CREATE SEQUENCE case_event_seq",
            """CREATE TABLE case_events (
                event_id BIGINT PRIMARY KEY DEFAULT nextval('case_event_seq'),
                case_id VARCHAR NOT NULL,
                at_time TIMESTAMPTZ NOT NULL,
                actor VARCHAR NOT NULL,
                event VARCHAR NOT NULL,
                from_status VARCHAR,
                to_status VARCHAR,
                note VARCHAR,
                details JSON
            )""",
        ],
    ),
]
MIGRATIONS.append(
    (
        5,
        "receiver: webhook deliveries seen (idempotency), OTLP spans waiting for their trace",
        [
            """CREATE TABLE webhook_receipts (
                webhook_id VARCHAR PRIMARY KEY,
                sender VARCHAR NOT NULL,
                received_at TIMESTAMPTZ NOT NULL,
                records INTEGER NOT NULL,
                stored INTEGER NOT NULL,
                quarantined INTEGER NOT NULL
            )""",
            """CREATE TABLE pending_spans (
                trace_id VARCHAR NOT NULL,
                span_id VARCHAR NOT NULL,
                sender VARCHAR NOT NULL,
                is_root BOOLEAN NOT NULL,
                received_at TIMESTAMPTZ NOT NULL,
                resource JSON,
                scope JSON,
                span JSON NOT NULL,
                PRIMARY KEY (trace_id, span_id)
            )""",
        ],
    )
)
MIGRATIONS.append(
    (
        6,
        "secret fingerprints for the last guard, and what it caught",
        [
            """CREATE TABLE secret_marks (
                fingerprint VARCHAR PRIMARY KEY
            )""",
            """CREATE TABLE guard_catches (
                stage VARCHAR PRIMARY KEY,
                n BIGINT NOT NULL
            )""",
        ],
    )
)
MIGRATIONS.append(
    (
        7,
        "pending spans keyed by sender as well as trace, and per-item processing failures",
        [
            """CREATE TABLE pending_spans_v7 (
                sender VARCHAR NOT NULL,
                trace_id VARCHAR NOT NULL,
                span_id VARCHAR NOT NULL,
                is_root BOOLEAN NOT NULL,
                received_at TIMESTAMPTZ NOT NULL,
                resource JSON,
                scope JSON,
                span JSON NOT NULL,
                PRIMARY KEY (sender, trace_id, span_id)
            )""",
            "INSERT INTO pending_spans_v7 SELECT sender, trace_id, span_id, is_root,"
            " received_at, resource, scope, span FROM pending_spans",
            "DROP TABLE pending_spans",
            "ALTER TABLE pending_spans_v7 RENAME TO pending_spans",
            """CREATE TABLE processing_failures (
                stage VARCHAR NOT NULL,
                item VARCHAR NOT NULL,
                reason VARCHAR NOT NULL,
                failed_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (stage, item)
            )""",
        ],
    )
)
MIGRATIONS.append(
    (
        8,
        "files already read (an unchanged file is not read again, a grown one from where it "
        "ended), and the inputs campaigns were last detected on and verdicts last judged on",
        [
            """CREATE TABLE ingested_files (
                path VARCHAR PRIMARY KEY,
                size BIGINT NOT NULL,
                mtime_ns BIGINT NOT NULL,
                sha256 VARCHAR NOT NULL,
                complete_bytes BIGINT NOT NULL,
                complete_sha256 VARCHAR NOT NULL,
                lines BIGINT NOT NULL,
                read_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE campaign_inputs (
                window_size VARCHAR NOT NULL,
                backend VARCHAR NOT NULL,
                model VARCHAR NOT NULL,
                prompt_version VARCHAR NOT NULL,
                digest VARCHAR NOT NULL,
                PRIMARY KEY (window_size, backend, model, prompt_version)
            )""",
            """CREATE TABLE judge_inputs (
                judge VARCHAR NOT NULL,
                scope VARCHAR NOT NULL,
                digest VARCHAR NOT NULL,
                PRIMARY KEY (judge, scope)
            )""",
        ],
    )
)
MIGRATIONS.append(
    (
        9,
        "summary failures that asking again cannot change (a greedy model's rejected answer)",
        ["ALTER TABLE summary_failures ADD COLUMN settled BOOLEAN DEFAULT false"],
    )
)
MIGRATIONS.append(
    (
        10,
        "a log of what changed an account's windows (new interactions, new summaries), and how "
        "far each rollup has read it: a rollup plans only the windows changed since",
        [
            "CREATE SEQUENCE rollup_change_seq START 1",
            """CREATE TABLE rollup_changes (
                seq BIGINT NOT NULL,
                account_id VARCHAR NOT NULL,
                started_at TIMESTAMPTZ NOT NULL
            )""",
            """CREATE TABLE rollup_cursors (
                params_hash VARCHAR PRIMARY KEY,
                seq BIGINT NOT NULL
            )""",
        ],
    )
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

# content a greedy model already answered unusably under the same key (see AnswerRejected)
_NOT_SETTLED = (
    " AND NOT EXISTS (SELECT 1 FROM summary_failures f WHERE f.content_hash = i.content_hash"
    " AND f.backend = ? AND f.model = ? AND f.prompt_version = ? AND f.settled)"
)


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
    inserted_ids: set[str] = field(default_factory=set)


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


def _conflict(
    item: tuple[Interaction, str | None, int | None], stored_hash: str, stored_account: str
) -> Rejected:
    inter, source_file, line = item
    if stored_hash != inter.content_hash:
        why = (
            f"interaction_id {inter.interaction_id!r} is already stored with different content "
            f"(stored content hash {stored_hash[:12]}, this one {inter.content_hash[:12]})"
        )
    else:
        why = (
            f"interaction_id {inter.interaction_id!r} is already stored under another account "
            f"({stored_account!r}; this one is {inter.account_id!r}): the same id from two "
            "accounts is kept here for a reviewer, not dropped as a duplicate"
        )
    return Rejected(
        source_file,
        line,
        inter.source_format,
        "conflicting_duplicate",
        why,
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


DUCKDB_MAGIC = b"DUCK"  # at byte 8 of every DuckDB database file


def is_database_file(path: Path) -> bool:
    """Whether `path` is a DuckDB database (by its header, not its name)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(12)[8:12] == DUCKDB_MAGIC
    except OSError:
        return False


def check_database_path(path: Path) -> None:
    """--db must name a DuckDB file or a path that does not exist yet. DuckDB reads some other
    files (a .json, a .csv) as a database without complaint, and writes then go nowhere."""
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a database file; name a file in it")
    if path.stat().st_size and not is_database_file(path):
        raise StoreError(
            f"{path}: cannot open the database: the file exists and is not a DuckDB database; "
            "refusing to open it so that nothing is written into, or lost beside, another "
            "file. Name a new path or an existing tracewatch database."
        )


class Store:
    """One DuckDB file. Open it, use it, close it (or use it as a context manager)."""

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = str(path or default_db_path())
        self.read_only = read_only
        self._guard: Guard | None = None
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise StoreError(
                f"{self.path}: no such database. Ingest something first "
                "(tracewatch ingest PATH --db ...) or point --db / TRACEWATCH_DB at an "
                "existing one."
            )
        if self.path != ":memory:":
            check_database_path(Path(self.path))
        try:
            self.con = duckdb.connect(self.path, read_only=read_only, config=duckdb_config())
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                raise StoreError(
                    f"{self.path}: the database is in use by another tracewatch process "
                    "(DuckDB allows one writing process; `tracewatch serve` holds its database "
                    "while it runs). Stop it, use another --db, or send the traces to the "
                    "server's /v1/interactions instead; `tracewatch queue` and `tracewatch "
                    "report` reach it with --server URL. "
                    f"({msg.splitlines()[0]})"
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

    def cursor(self) -> Store:
        """A second connection to this open database, for another thread of this process.

        DuckDB lets one process write, through as many connections as it likes; this is how
        the server's request writer and its background worker share one file.
        """
        other = object.__new__(Store)
        other.path = self.path
        other.read_only = self.read_only
        other.con = self.con.cursor()
        # the same secret marks (one writer remembers, the other's writes are checked), each
        # connection writing its own counts
        other._guard = self.guard.on(other.con)
        return other

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
            with transaction(self.con):
                for sql in statements:
                    self.con.execute(sql)
                self.con.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)",
                    [version, description, datetime.now(UTC)],
                )

    # -- writes -------------------------------------------------------------------------

    @property
    def guard(self) -> Guard:
        """The last guard of this database (monitor/guard.py), with the deployment's key."""
        if self._guard is None:
            from tracewatch.summarizers.redaction import load_key

            self._guard = Guard(self.con, load_key(self.path))
        return self._guard

    def write_batch(
        self,
        items: Sequence[tuple[Interaction, str | None, int | None]],
        rejected: Sequence[Rejected] = (),
        found: Mapping[str, set[str]] | None = None,
    ) -> BatchResult:
        """Store interactions (with their source file and line) and rejects, atomically.
        `found`: their secrets by content hash, where already collected."""
        with transaction(self.con):
            return self.write_batch_in_transaction(items, rejected, found)

    def write_batch_in_transaction(
        self,
        items: Sequence[tuple[Interaction, str | None, int | None]],
        rejected: Sequence[Rejected] = (),
        found: Mapping[str, set[str]] | None = None,
    ) -> BatchResult:
        """`write_batch` inside a transaction the caller holds, so that the caller can commit
        something else (a webhook receipt, the removal of assembled spans) with it."""
        now = datetime.now(UTC)
        rejected = list(rejected)
        known: dict[str, str] = {}
        if items:
            ids = pa.table(
                {"interaction_id": pa.array([i[0].interaction_id for i in items], pa.string())}
            )
            self.con.register("_tw_ids", ids)
            known = {
                iid: (chash, account)
                for iid, chash, account in self.con.execute(
                    "SELECT DISTINCT i.interaction_id, i.content_hash, i.account_id"
                    " FROM interactions i JOIN _tw_ids b USING (interaction_id)"
                ).fetchall()
            }
            self.con.unregister("_tw_ids")
        new: list[tuple[Interaction, str | None, int | None]] = []
        conflicts = 0
        for item in items:
            inter = item[0]
            stored = known.get(inter.interaction_id)
            if stored is None:
                known[inter.interaction_id] = (inter.content_hash, inter.account_id)
                new.append(item)
            elif stored != (inter.content_hash, inter.account_id):
                # Same id, other content or another account: a duplicate is the same
                # interaction of the same account, and dropping anything else would lose it.
                conflicts += 1
                rejected.append(_conflict(item, *stored))
        if new:
            self._insert_interactions(new, now)
            self.guard.remember((i[0] for i in new), found)  # with them, in the same transaction
        inserted = len(new)
        q_new, q_repeat = self._insert_quarantine(rejected, now)
        return BatchResult(
            inserted=inserted,
            duplicates=len(items) - inserted - conflicts,
            conflicts=conflicts,
            quarantined=q_new,
            quarantine_repeats=q_repeat,
            inserted_ids={i[0].interaction_id for i in new},
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
            self.con.execute(
                "INSERT INTO rollup_changes SELECT nextval('rollup_change_seq'),"
                " account_id, started_at FROM _tw_interactions"
            )
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

    # -- summaries ----------------------------------------------------------------------

    def _unsummarized_where(
        self, backend: str, model: str, prompt_version: str, include_settled: bool
    ) -> tuple[str, list[str]]:
        """Interactions `i` whose content has no summary under this key, and, unless
        `include_settled`, no answer a greedy model already rejected under it."""
        key = [backend, model, prompt_version]
        sql = (
            " WHERE NOT EXISTS (SELECT 1 FROM summaries s WHERE s.content_hash = i.content_hash"
            " AND s.backend = ? AND s.model = ? AND s.prompt_version = ?)"
        )
        return (sql, key) if include_settled else (sql + _NOT_SETTLED, key + key)

    def unsummarized(
        self,
        backend: str,
        model: str,
        prompt_version: str,
        batch_size: int = 500,
        include_settled: bool = False,
    ) -> Iterator[list[Interaction]]:
        """One interaction per content hash that has no summary under this key, in batches.

        Content whose answer was rejected by a greedy model under this key is left out unless
        `include_settled`: the same prompt would get the same answer.
        """
        where, params = self._unsummarized_where(backend, model, prompt_version, include_settled)
        ids = [
            r[0]
            for r in self.con.execute(
                f"SELECT min(interaction_id) FROM interactions i{where}"
                " GROUP BY content_hash ORDER BY 1",
                params,
            ).fetchall()
        ]
        for start in range(0, len(ids), batch_size):
            yield self.load_interactions(ids[start : start + batch_size])

    def count_unsummarized(
        self, backend: str, model: str, prompt_version: str, include_settled: bool = True
    ) -> int:
        """Distinct contents with no summary under this key; `include_settled=False` leaves
        out those a greedy model's rejected answer settled (what `summarize` would ask)."""
        where, params = self._unsummarized_where(backend, model, prompt_version, include_settled)
        row = self.con.execute(
            f"SELECT count(DISTINCT content_hash) FROM interactions i{where}", params
        ).fetchall()
        return int(row[0][0]) if row else 0

    def load_interactions(self, ids: list[str]) -> list[Interaction]:
        """Interactions with their steps, rebuilt from the tables, in the order of `ids`."""
        if not ids:
            return []
        self.con.register("_tw_load", pa.table({"interaction_id": pa.array(ids, pa.string())}))
        try:
            heads = self.con.execute(
                "SELECT interaction_id, account_id, source_format, started_at, ended_at, agent,"
                " model, content_hash, metadata FROM interactions JOIN _tw_load"
                " USING (interaction_id)"
            ).fetchall()
            step_rows = self.con.execute(
                "SELECT s.* FROM steps s JOIN _tw_load USING (interaction_id)"
                " ORDER BY s.interaction_id, s.step_index"
            ).fetchall()
        finally:
            self.con.unregister("_tw_load")
        by_id: dict[str, list[Step]] = {}
        for r in step_rows:
            by_id.setdefault(r[0], []).append(
                Step(
                    index=r[1],
                    actor=r[2],
                    kind=r[3],
                    text=r[4],
                    tool_name=r[5],
                    call_id=r[6],
                    action=r[7],
                    arguments=orjson.loads(r[8]) if r[8] else None,
                    target_url=r[9],
                    target_domain=r[10],
                    target_app=r[11],
                    result=r[12],
                    is_error=r[13],
                    timestamp=r[14],
                    attachments=orjson.loads(r[15]) if r[15] else [],
                )
            )
        out = {
            h[0]: Interaction(
                interaction_id=h[0],
                account_id=h[1],
                source_format=h[2],
                started_at=h[3],
                ended_at=h[4],
                agent=h[5],
                model=h[6],
                content_hash=h[7],
                metadata=orjson.loads(h[8]) if h[8] else {},
                steps=by_id.get(h[0], []),
            )
            for h in heads
        }
        return [out[i] for i in ids if i in out]

    def write_summaries(self, summaries: Sequence[Summary], stored_only: bool = False) -> int:
        """Insert summaries not stored yet. `stored_only`: only of content some stored
        interaction has (ingest summarizes records before it knows which it keeps)."""
        if stored_only:
            summaries = self._new_of_stored(summaries)
        if not summaries:
            return 0
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "content_hash",
                "backend",
                "model",
                "prompt_version",
                "text",
                "facets",
                "tokens_in",
                "tokens_out",
                "created_at",
            )
        }
        guard = self.guard
        for s in summaries:
            cols["content_hash"].append(s.content_hash)
            cols["backend"].append(s.backend)
            cols["model"].append(s.model)
            cols["prompt_version"].append(s.prompt_version)
            cols["text"].append(guard.clean(s.text, "summary"))
            cols["facets"].append(guard.clean_json(s.facets.model_dump_json(), "summary"))
            cols["tokens_in"].append(s.tokens_in)
            cols["tokens_out"].append(s.tokens_out)
            cols["created_at"].append(s.created_at)
        self.con.register("_tw_sum", pa.table(cols))
        try:
            with transaction(self.con):
                self.con.execute(
                    "INSERT OR IGNORE INTO summaries SELECT content_hash, backend, model,"
                    " prompt_version, text, facets, tokens_in, tokens_out, created_at FROM _tw_sum"
                )
                # a window's rollup reads its members' summaries: theirs changed
                self.con.execute(
                    "INSERT INTO rollup_changes SELECT nextval('rollup_change_seq'),"
                    " account_id, started_at FROM interactions"
                    " WHERE content_hash IN (SELECT content_hash FROM _tw_sum)"
                )
                guard.flush()
        finally:
            self.con.unregister("_tw_sum")
        return len(summaries)

    def _new_of_stored(self, summaries: Sequence[Summary]) -> list[Summary]:
        """One summary per content hash that a stored interaction has and no stored summary
        under the same key does: exactly what `summarize` would have written."""
        firsts: dict[tuple[str, str, str, str], Summary] = {}
        for s in summaries:
            firsts.setdefault((s.content_hash, s.backend, s.model, s.prompt_version), s)
        if not firsts:
            return []
        keys = list(firsts)
        self.con.register(
            "_tw_new",
            pa.table({c: [k[n] for k in keys] for n, c in enumerate(("h", "b", "m", "p"))}),
        )
        try:
            rows = self.con.execute(
                "SELECT n.h, n.b, n.m, n.p FROM _tw_new n"
                " WHERE n.h IN (SELECT content_hash FROM interactions)"
                " AND NOT EXISTS (SELECT 1 FROM summaries s WHERE s.content_hash = n.h"
                " AND s.backend = n.b AND s.model = n.m AND s.prompt_version = n.p)"
            ).fetchall()
        finally:
            self.con.unregister("_tw_new")
        new = {tuple(r) for r in rows}
        return [firsts[k] for k in keys if k in new]

    def write_summary_failures(
        self, failures: Sequence[tuple[str, str, str, str, str, bool]]
    ) -> None:
        """(content_hash, backend, model, prompt_version, error, settled) rows, kept for
        `summarize`; a settled one is not asked again under the same key."""
        if failures:
            now = datetime.now(UTC)
            self.con.executemany(
                "INSERT INTO summary_failures (content_hash, backend, model, prompt_version,"
                " error, settled, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*f[:5], f[5], now) for f in failures],
            )

    def record_failure(self, stage: str, item: str, reason: str) -> None:
        """One item of a processing stage (a rollup unit, a judgement) that failed and was
        skipped; the pass went on. A later success does not clear it: it is history."""
        self.con.execute(
            "INSERT OR REPLACE INTO processing_failures VALUES (?, ?, ?, ?)",
            [stage, item, reason[:500], datetime.now(UTC)],
        )

    def change_seq(self) -> int:
        """The latest entry of the change log (0 when empty)."""
        rows = self.con.execute("SELECT coalesce(max(seq), 0) FROM rollup_changes").fetchall()
        return int(rows[0][0])

    def rollup_cursor(self, key: str) -> int | None:
        """How far a rollup with these parameters last finished reading the change log."""
        rows = self.con.execute(
            "SELECT seq FROM rollup_cursors WHERE params_hash = ?", [key]
        ).fetchall()
        return int(rows[0][0]) if rows else None

    def set_rollup_cursor(self, key: str, seq: int) -> None:
        self.con.execute("INSERT OR REPLACE INTO rollup_cursors VALUES (?, ?)", [key, seq])

    def aggregates_digest(self, kinds: Sequence[str], **equal: str | None) -> str:
        """A digest of which aggregates of these kinds exist and what each was made from
        (id and input hash): equal digests mean nothing derived from them needs redoing.
        `equal` narrows by column (backend=..., window_size=...); None leaves it open."""
        where = ["kind IN (SELECT unnest(?))"]
        params: list[Any] = [list(kinds)]
        for column, value in equal.items():
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return self.con.execute(
            "SELECT md5(coalesce(string_agg(aggregate_id || ':' || input_hash, ','"
            f" ORDER BY aggregate_id), '')) FROM aggregates WHERE {' AND '.join(where)}",
            params,
        ).fetchall()[0][0]

    def failure_counts(self) -> dict[str, int]:
        """Failed items per stage: summaries (per interaction content), rollup units, verdicts."""
        counts = dict(
            self.con.execute(
                "SELECT stage, count(*) FROM processing_failures GROUP BY 1"
            ).fetchall()
        )
        summ = self.con.execute("SELECT count(*) FROM summary_failures").fetchall()[0][0]
        if summ:
            counts["summarize"] = int(summ)
        return {k: int(v) for k, v in sorted(counts.items())}

    def summaries_for(self, backend: str | None = None) -> list[dict[str, Any]]:
        """Every stored summary with the interactions it covers (for reports and tests)."""
        sql = (
            "SELECT s.content_hash, s.backend, s.model, s.prompt_version, s.text, s.facets,"
            " s.tokens_in, s.tokens_out FROM summaries s"
        )
        params: list[Any] = []
        if backend:
            sql += " WHERE s.backend = ?"
            params.append(backend)
        cur = self.con.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def interaction_ids(self) -> Iterable[str]:
        return (
            r[0] for r in self.con.execute("SELECT interaction_id FROM interactions").fetchall()
        )
