"""The work Ray Data runs on its workers: each stage calls the functions `tracewatch run` calls.

- `adapt_files`: an input file through `ingest.adapt_input` (detect, adapt, envelope, ids,
  rejections), into one Parquet file per input.
- `SummarizeBatch`: interactions through the backend's `summarize_many`, which redacts with
  the deployment's key before anything is summarized, into day-partitioned Parquet.
- `RollupShard`: the accounts of one shard through `run_rollup` (windows, then periods) in a
  scratch DuckDB file on the worker, into one Parquet file of aggregates per shard.

Each writes its file whole or not at all and skips work whose file exists (see `layout`).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from datetime import UTC
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from pydantic import BaseModel

from tracewatch.monitor.aggregates import Aggregate
from tracewatch.monitor.ingest import IngestOptions, IngestReport, adapt_input
from tracewatch.monitor.judge import read_aggregates
from tracewatch.monitor.models import Interaction
from tracewatch.monitor.ray_engine.inputs import InputFile, local_copy
from tracewatch.monitor.ray_engine.layout import Layout
from tracewatch.monitor.rollup import RollupOptions, run_rollup
from tracewatch.monitor.rollup_store import digest
from tracewatch.monitor.store import Rejected, Store
from tracewatch.summarizers.base import Summarizer, SummarizerError
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.registry import create

Batch = dict[str, Any]

INTERACTION_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("kind", pa.string()),  # "interaction" or "rejected"
        ("interaction_id", pa.string()),
        ("account_id", pa.string()),
        ("content_hash", pa.string()),
        ("day", pa.string()),
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("payload", pa.string()),  # the Interaction as JSON
        ("adapter", pa.string()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("raw", pa.binary()),
    ]
)
SUMMARY_SCHEMA = pa.schema(
    [
        ("content_hash", pa.string()),
        ("backend", pa.string()),
        ("model", pa.string()),
        ("prompt_version", pa.string()),
        ("text", pa.string()),
        ("facets", pa.string()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
INGEST_META = b"tracewatch.ingest"
ROLLUP_META = b"tracewatch.rollup"


class BackendSpec(BaseModel):
    """What a worker needs to build the same backend as the driver, key included."""

    name: str
    model: str | None = None
    vllm_url: str | None = None
    engine_args: dict[str, Any] = {}
    key: bytes
    concurrency: int = 8

    def create(self) -> Summarizer:
        return create(
            self.name,
            Redactor(self.key),
            {"model": self.model, "vllm_url": self.vllm_url, "engine_args": self.engine_args},
        )

    def storage_key(self, backend: Summarizer) -> str:
        """The folder name of this backend's summaries and aggregates (its cache key)."""
        return digest(
            backend.name, backend.model, backend.prompt_version, backend.rollup_prompt_version
        )[:16]


# -- adapt ------------------------------------------------------------------------------


def adapt_one(item: InputFile, layout: Layout, opts: IngestOptions) -> None:
    """One input to its Parquet file, with its ingest counts in the file's metadata."""
    path = layout.interactions(item.key)
    report = IngestReport()
    rows: list[dict[str, Any]] = []

    def count(n: int) -> None:
        report.bytes += n

    with local_copy(item) as local:
        for seq, got in enumerate(adapt_input(local, opts, report, count)):
            if isinstance(got, Rejected):
                rows.append(
                    {
                        "seq": seq,
                        "kind": "rejected",
                        "source_file": item.display,
                        "line": got.line,
                        "adapter": got.adapter,
                        "reason": got.reason,
                        "error": got.error,
                        "raw": got.raw,
                    }
                )
                continue
            inter, _, line = got
            rows.append(
                {
                    "seq": seq,
                    "kind": "interaction",
                    "interaction_id": inter.interaction_id,
                    "account_id": inter.account_id,
                    "content_hash": inter.content_hash,
                    "day": inter.started_at.astimezone(UTC).strftime("%Y-%m-%d"),
                    "source_file": item.display,
                    "line": line,
                    "payload": inter.model_dump_json(),
                }
            )
    table = pa.Table.from_pylist(rows, schema=INTERACTION_SCHEMA)
    meta = {INGEST_META: orjson.dumps(report.as_dict())}
    layout.write(path, table.replace_schema_metadata(meta))


def adapt_files(batch: Batch, layout: Layout, opts: IngestOptions) -> Batch:
    """Ray `map_batches` function over rows of `InputFile` fields; the driver skips inputs
    whose file exists and reads the counts from the files."""
    for i in range(len(batch["key"])):
        adapt_one(
            InputFile(**{k: _plain(batch[k][i]) for k in InputFile.model_fields}), layout, opts
        )
    return {"key": list(batch["key"])}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- summarize --------------------------------------------------------------------------


def summaries_table(summaries: list[Summary]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                **s.model_dump(exclude={"facets"}),
                "facets": s.facets.model_dump_json(),
            }
            for s in summaries
        ],
        schema=SUMMARY_SCHEMA,
    )


def summaries_from(table: pa.Table) -> list[Summary]:
    out = []
    for row in table.select(SUMMARY_SCHEMA.names).to_pylist():
        row["facets"] = orjson.loads(row["facets"])
        out.append(Summary.model_validate(row))
    return out


def first_of_content(group: Batch) -> Batch:
    """`map_groups` over one content hash: its lowest interaction id, as `summarize` picks."""
    i = int(np.argmin(group["interaction_id"]))
    return {k: [group[k][i]] for k in ("content_hash", "interaction_id", "day", "payload")}


def write_results(
    layout: Layout,
    folder: str,
    hashes: list[str],
    days: list[str],
    results: list[Summary | SummarizerError],
) -> Batch:
    """A batch's summaries into one Parquet part per day; per content, its error or None."""
    by_day: dict[str, list[Summary]] = {}
    errors: list[str | None] = []
    for day, res in zip(days, results, strict=True):
        if isinstance(res, Summary):
            by_day.setdefault(str(day), []).append(res)
            errors.append(None)
        else:
            errors.append(str(res).split("\n", 1)[0][:200] or type(res).__name__)
    for day, done in by_day.items():
        part = layout.summary_part(folder, day, [s.content_hash for s in done])
        layout.write(part, summaries_table(done))
    return {
        "content_hash": list(hashes),
        "error": errors,
        "tokens_in": [r.tokens_in if isinstance(r, Summary) else 0 for r in results],
        "tokens_out": [r.tokens_out if isinstance(r, Summary) else 0 for r in results],
    }


class SummarizeBatch:
    """A Ray actor: one backend per worker, kept across batches (a client or an engine)."""

    def __init__(self, spec: BackendSpec, layout: Layout) -> None:
        self.spec = spec
        self.layout = layout
        self.backend = spec.create()
        self.folder = spec.storage_key(self.backend)
        self.loop = asyncio.new_event_loop()

    def __call__(self, batch: Batch) -> Batch:
        inters = [Interaction.model_validate_json(p) for p in batch["payload"]]
        results = self.loop.run_until_complete(
            self.backend.summarize_many(inters, self.spec.concurrency)
        )
        hashes = [i.content_hash for i in inters]
        return write_results(self.layout, self.folder, hashes, list(batch["day"]), results)


def read_summaries(
    layout: Layout, folder: str, hashes: list[str] | None = None, columns: list[str] | None = None
) -> pa.Table:
    """Stored summaries of one backend, all of them or those of `hashes` (content_hash is
    always among the columns)."""
    if columns is not None and "content_hash" not in columns:
        columns = ["content_hash", *columns]
    files = layout.files_under(layout.summaries_dir(folder))
    if not files:
        empty = SUMMARY_SCHEMA.empty_table()
        return empty.select(columns) if columns is not None else empty
    fs, _ = layout.fs_root
    ds = pads.dataset(files, schema=SUMMARY_SCHEMA, format="parquet", filesystem=fs)
    flt = pc.field("content_hash").isin(hashes) if hashes is not None else None
    table = ds.to_table(columns=columns, filter=flt)
    # A summary retried by Ray can exist in two part files; keep one row per content.
    _, first = np.unique(table.column("content_hash").to_numpy(zero_copy_only=False), True)
    return table.take(pa.array(np.sort(first)))


# -- rollup -----------------------------------------------------------------------------


def shard_of(batch: Batch, shards: int) -> Batch:
    """The shard an account belongs to, stable across runs and machines."""
    batch["shard"] = np.array(
        [int(digest(a)[:8], 16) % shards for a in batch["account_id"]], dtype=np.int64
    )
    return batch


def _input_key(parquet_path: Any) -> str:
    return str(parquet_path).rsplit("/", 1)[-1].removesuffix(".parquet")


class RollupShard:
    """A Ray actor: `run_rollup` (windows and periods, no campaigns) over whole accounts."""

    def __init__(
        self, spec: BackendSpec, layout: Layout, options: RollupOptions, order: dict[str, int]
    ) -> None:
        self.layout = layout
        self.backend = spec.create()
        self.folder = spec.storage_key(self.backend)
        self.options = options.model_copy(update={"campaigns": False})
        self.order = order
        self.loop = asyncio.new_event_loop()

    def __call__(self, group: Batch) -> Batch:
        # The order `ingest` would have written them in: input files in order, then lines.
        rank = sorted(
            range(len(group["seq"])),
            key=lambda i: (self.order[_input_key(group["path"][i])], int(group["seq"][i])),
        )
        pairs = sorted(f"{group['interaction_id'][i]}:{group['content_hash'][i]}" for i in rank)
        hashes = sorted({str(h) for h in group["content_hash"]})
        summaries = read_summaries(self.layout, self.folder, hashes)
        key = digest(
            self.folder,
            self.options.model_dump_json(),
            *pairs,
            *sorted(summaries.column("content_hash").to_pylist()),
        )
        path = self.layout.aggregate_shard(self.folder, key)
        reused = self.layout.exists(path)
        if not reused:
            self._roll(group, rank, summaries, path)
        report = self.layout.metadata(path, ROLLUP_META)
        return {"shard": [path], "reused": [reused], "report": [orjson.dumps(report).decode()]}

    def _roll(self, group: Batch, rank: list[int], summaries: pa.Table, path: str) -> None:
        with (
            tempfile.TemporaryDirectory(prefix="tracewatch-shard-") as scratch,
            Store(f"{scratch}/shard.duckdb") as store,
        ):
            items = [
                (
                    Interaction.model_validate_json(group["payload"][i]),
                    str(group["source_file"][i]),
                    _plain(group["line"][i]),
                )
                for i in rank
            ]
            for start in range(0, len(items), 500):
                store.write_batch(items[start : start + 500])
            store.write_summaries(summaries_from(summaries))
            report = self.loop.run_until_complete(run_rollup(store, self.backend, self.options))
            aggs = read_aggregates(store, ["account_window", "account_period"], self.backend.name)
        table = pa.table(
            {
                "aggregate_id": [a.aggregate_id for a in aggs],
                "kind": [a.kind for a in aggs],
                "payload": [a.model_dump_json() for a in aggs],
            },
            schema=pa.schema(
                [("aggregate_id", pa.string()), ("kind", pa.string()), ("payload", pa.string())]
            ),
        )
        self.layout.write(
            path, table.replace_schema_metadata({ROLLUP_META: report.model_dump_json()})
        )


def aggregates_from(table: pa.Table) -> list[Aggregate]:
    return [Aggregate.model_validate_json(p) for p in table.column("payload").to_pylist()]


def merge_counts(reports: list[dict[str, Any]], field: str) -> dict[str, int]:
    total: Counter[str] = Counter()
    for r in reports:
        total.update(r.get(field, {}))
    return dict(total)
