"""Run the rollup: the library call behind `tracewatch rollup` and `tracewatch run`.

A run is identified by its parameters. If the last run with the same parameters did not
finish (killed, crashed), the next one resumes it from its LangGraph checkpoint (SQLite,
beside the DuckDB file) instead of starting over; a finished run's checkpoints are deleted.
Incrementality comes from the aggregates themselves: each stores a hash of its inputs, and a
window whose inputs did not change is not planned again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracewatch.monitor.rollup_store import RollupStore, SummaryKey, digest
from tracewatch.monitor.store import Store, StoreError
from tracewatch.monitor.windows import WINDOWS, parse_when, period_for
from tracewatch.summarizers.base import Summarizer

DEFAULT_BUDGET = 6000


class RollupOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window: str = "1d"
    since: str | None = None
    until: str | None = None
    accounts: list[str] = Field(default_factory=list)
    budget_tokens: int = Field(DEFAULT_BUDGET, ge=1)
    shard_size: int = Field(2000, ge=1, description="members per parallel task (and checkpoint)")
    concurrency: int = Field(8, ge=1)
    campaigns: bool = True

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        if v not in WINDOWS:
            raise ValueError(f"unknown window {v!r}; use one of {', '.join(WINDOWS)}")
        return v

    @field_validator("since", "until")
    @classmethod
    def _when(cls, v: str | None) -> str | None:
        if v is not None:
            parse_when(v)
        return v


class RollupReport(BaseModel):
    run_id: str
    resumed: bool
    window: str
    windows_rolled: int = 0
    windows_unchanged: int = 0
    periods_rolled: int = 0
    periods_unchanged: int = 0
    campaigns_found: int = 0
    campaigns_rolled: int = 0
    campaigns_retired: int = 0
    partials: int = 0
    extra_levels: int = 0
    model_failures: int = 0
    unsummarized_interactions: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0


def checkpoint_path(store: Store) -> str:
    if store.path == ":memory:":
        raise StoreError("the rollup needs a database file (its checkpoints are kept beside it)")
    return f"{store.path}.rollup.sqlite"


async def run_rollup(
    store: Store,
    summarizer: Summarizer,
    options: RollupOptions | None = None,
    on_progress: Callable[[str, int, int], None] = lambda event, units, members: None,
    checkpoints: str | Path | None = None,
) -> RollupReport:
    opts = options or RollupOptions()
    key = SummaryKey(
        summarizer.name,
        summarizer.model,
        summarizer.prompt_version,
        summarizer.rollup_prompt_version,
    )
    params = {"options": opts.model_dump(), "key": key.__dict__}
    params_hash = digest(orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode())
    rows = store.con.execute(
        "SELECT run_id FROM rollup_runs WHERE params_hash = ? AND status = 'running'"
        " ORDER BY started_at DESC LIMIT 1",
        [params_hash],
    ).fetchall()  # fetchall, not fetchone: a half-read result blocks the connection
    row = rows[0] if rows else None
    resumed = row is not None
    run_id = row[0] if row else f"rollup-{uuid.uuid4().hex[:12]}"
    if not resumed:
        store.con.execute(
            "INSERT INTO rollup_runs VALUES (?, ?, ?, 'running', ?, NULL, NULL)",
            [run_id, params_hash, orjson.dumps(params).decode(), datetime.now(UTC)],
        )
    t0 = time.perf_counter()
    rs = RollupStore(store, key)
    # What this rollup last finished reading of the change log. Only an unrestricted run
    # keeps one: a run over some accounts or times leaves the others' changes unread.
    unrestricted = not (opts.since or opts.until or opts.accounts)
    cursor_key = digest(
        "cursor", opts.window, opts.budget_tokens, opts.campaigns, *key.__dict__.values()
    )
    upto = store.change_seq()
    cursor = store.rollup_cursor(cursor_key) if unrestricted else None
    if cursor is not None and not resumed and cursor >= upto:
        # nothing changed since the last finished rollup: nothing to plan, nothing to load
        # (nor LangGraph to import); what is stored is what it found
        found = rs.count_aggregates("campaign", opts.window) if opts.campaigns else 0
        stats: dict[str, int] = {"campaign_found": found}
    else:
        stats = await _run_workflow(
            rs, summarizer, opts, cursor, run_id, resumed, on_progress, checkpoints
        )
    windows_rolled = stats.get("window_rolled", 0)
    periods_rolled = stats.get("period_rolled", 0)
    if cursor is None:
        windows_unchanged = stats.get("window_unchanged", 0)
        periods_unchanged = stats.get("period_unchanged", 0)
    else:  # planned were only the changed ones: the others are unchanged too
        windows_unchanged = rs.count_aggregates("account_window", opts.window) - windows_rolled
        periods_unchanged = (
            rs.count_aggregates("account_period", period_for(opts.window)) - periods_rolled
        )
    report = RollupReport(
        run_id=run_id,
        resumed=resumed,
        window=opts.window,
        windows_rolled=windows_rolled,
        windows_unchanged=windows_unchanged,
        periods_rolled=periods_rolled,
        periods_unchanged=periods_unchanged,
        campaigns_found=stats.get("campaign_found", 0),
        campaigns_rolled=stats.get("campaign_rolled", 0),
        campaigns_retired=stats.get("campaign_retired", 0),
        partials=stats.get("partials", 0),
        extra_levels=stats.get("levels", 0),
        model_failures=stats.get("model_failures", 0),
        tokens_in=stats.get("tokens_in", 0),
        tokens_out=stats.get("tokens_out", 0),
        unsummarized_interactions=store.count_unsummarized(
            key.backend, key.model, key.prompt_version
        ),
        seconds=round(time.perf_counter() - t0, 3),
    )
    if unrestricted and not resumed:
        # A resumed run planned from an older state than `upto`: leave the cursor where it
        # was, so that the next run reads what arrived in between.
        store.set_rollup_cursor(cursor_key, upto)
    store.con.execute(
        "UPDATE rollup_runs SET status = 'done', finished_at = ?, report = ? WHERE run_id = ?",
        [datetime.now(UTC), report.model_dump_json(), run_id],
    )
    return report


async def _run_workflow(
    rs: RollupStore,
    summarizer: Summarizer,
    opts: RollupOptions,
    cursor: int | None,
    run_id: str,
    resumed: bool,
    on_progress: Callable[[str, int, int], None],
    checkpoints: str | Path | None,
) -> dict[str, int]:
    """The LangGraph workflow over what changed after `cursor` (everything when None), from
    its checkpoint when resumed; its counts."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from tracewatch.monitor.rollup_graph import RollupContext, RollupSettings, build

    settings = RollupSettings(
        window=opts.window,
        since=opts.since,
        until=opts.until,
        accounts=opts.accounts,
        budget_tokens=opts.budget_tokens,
        shard_size=opts.shard_size,
        concurrency=opts.concurrency,
        campaigns=opts.campaigns,
        changed_after=cursor,
    )
    ctx = RollupContext(rs, summarizer, settings, on_progress)
    path = str(checkpoints or checkpoint_path(rs.store))
    # max_concurrency bounds the Send tasks in flight, so shards finish (and are checkpointed)
    # one after another instead of all at the end of a superstep.
    config: Any = {
        "configurable": {"thread_id": run_id},
        "recursion_limit": 100_000,
        "max_concurrency": opts.concurrency,
    }
    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        graph = build(ctx).compile(checkpointer=saver)
        snapshot = await graph.aget_state(config)
        if resumed and snapshot.next:
            await graph.ainvoke(None, config, durability="sync")
        elif not (resumed and snapshot.values.get("phase") == "done"):
            await graph.ainvoke({"run_id": run_id, "phase": "start"}, config, durability="sync")
        final = await graph.aget_state(config)
        stats: dict[str, int] = final.values.get("stats", {})
        await saver.adelete_thread(run_id)
    return stats
