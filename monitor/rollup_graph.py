"""The rollup as a LangGraph workflow: phases, levels, and a Send fan-out at every level.

    START -> advance -(Send per shard)-> reduce -> collect -(Send per shard)-> reduce ...
                ^                                     |
                +------------- (level done) ----------+          advance -> END

`advance` finishes a round (writes its aggregates) and plans the next one: account windows,
then account periods (day -> week) over the windows, then cross-account campaigns over the
windows. The window and period phases go in rounds of account ranges (`PLAN_BATCH` windows
each), so what one round plans, loads and writes is bounded whatever the corpus size.

Each aggregate to build is a job; its members (interaction summaries, or window aggregates)
are cut into chunks that fit the context budget, and every chunk is a unit of
level 0. `reduce` summarizes a shard of units in parallel (one Send each) into partials;
`collect` turns each job's partials into the units of the next level, until every job is
down to one partial: that is the aggregate. The recursion is the graph's own loop, one
superstep per level, so the checkpointer records progress after every shard, and a killed
run resumes with the same plan without redoing finished shards.

State holds only ids and small job records; texts and facets live in DuckDB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from tracewatch.monitor.aggregates import Aggregate, CampaignLink, RollupFacets
from tracewatch.monitor.campaigns import detect
from tracewatch.monitor.rollup_store import RollupStore, WindowScope, digest
from tracewatch.monitor.windows import (
    bucket_end,
    bucket_start,
    parse_when,
    period_for,
    span_seconds,
    window_seconds,
)
from tracewatch.summarizers.base import Summarizer, SummarizerError
from tracewatch.summarizers.rollup_prompt import (
    RollupItem,
    RollupRequest,
    RollupText,
    item_tokens,
    template_text,
)

PHASES = ["start", "window", "period", "campaign", "done"]


FINISH_BATCH = 500  # aggregates built and written at a time
# Account windows (or, for periods, window aggregates) planned, reduced and written per
# round of a phase: the state, the members loaded by a superstep's shards and the partials
# written by it are bounded by one round, not by the corpus.
PLAN_BATCH = 2000


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[k] = out.get(k, 0) + v
    return out


class RollupState(TypedDict, total=False):
    run_id: str
    phase: str
    level: int
    jobs: list[dict[str, Any]]
    units: list[dict[str, Any]]
    # account ranges of the phase still to plan: a phase is done when none is left
    batches: list[list[str]]
    stats: Annotated[dict[str, int], _add_counts]


class ShardInput(TypedDict):
    units: list[dict[str, Any]]


@dataclass
class RollupSettings:
    window: str
    since: str | None
    until: str | None
    accounts: list[str]
    budget_tokens: int
    shard_size: int
    concurrency: int
    campaigns: bool
    # plan only windows and periods with a change logged after this; None: plan them all
    changed_after: int | None = None


@dataclass
class RollupContext:
    rs: RollupStore
    summarizer: Summarizer
    settings: RollupSettings
    on_progress: Callable[[str, int, int], None]

    @property
    def room(self) -> int:
        """Tokens left for member summaries once the fixed prompt is paid for."""
        return max(0, self.settings.budget_tokens - self.summarizer.rollup_overhead_tokens())


def chunk(tokens: list[int], room: int) -> list[list[int]]:
    """Greedy chunks under `room` tokens, in order; never a lone member when more remain.

    Two members per chunk at least guarantees each level at most halves the count, so the
    recursion ends even when single summaries exceed the budget.
    """
    if sum(tokens) <= room or len(tokens) <= 1:
        return [list(range(len(tokens)))]
    chunks: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i, t in enumerate(tokens):
        if len(cur) >= 2 and used + t > room:
            chunks.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += t
    if cur:
        if len(cur) == 1 and chunks:
            chunks[-1].append(cur[0])
        else:
            chunks.append(cur)
    return chunks


def _units(job: dict[str, Any], level: int, refs: list[str], tokens: list[int], room: int):
    out = []
    for n, idx in enumerate(chunk(tokens, room)):
        out.append(
            {
                "aggregate_id": job["aggregate_id"],
                "input_hash": job["input_hash"],
                "kind": job["kind"],
                "subject": job["subject"],
                "label": job["label"],
                "member_kind": job["member_kind"] if level == 0 else "partial",
                "level": level,
                "chunk": n,
                "members": [refs[i] for i in idx],
                "partial_id": digest(job["aggregate_id"], job["input_hash"], level, n),
            }
        )
    return out


def _shards(units: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    shards: list[list[dict[str, Any]]] = []
    cur: list[dict[str, Any]] = []
    n = 0
    for u in units:
        if cur and n + len(u["members"]) > size:
            shards.append(cur)
            cur, n = [], 0
        cur.append(u)
        n += len(u["members"])
    if cur:
        shards.append(cur)
    return shards


def _digest_of(f: RollupFacets) -> dict[str, Any]:
    top = sorted(f.domains.items(), key=lambda kv: (-kv[1].n, kv[0]))[:4]
    tx = sorted(f.transactions.items(), key=lambda kv: (-kv[1].n, kv[0]))[:6]
    return {
        "top_domains": [f"{d} {e.n}" for d, e in top],
        "transactions": [f"{k} x{e.n}" for k, e in tx],
        "top_group": f.content[0].text if f.content and f.content[0].n >= 2 else None,
        "risk_cues": [f"{c} x{e.n}" for c, e in sorted(f.risk_cues.items())[:4]],
    }


def _partial_row(u: dict[str, Any], text: RollupText, facets: RollupFacets) -> dict[str, Any]:
    keys = ("partial_id", "aggregate_id", "input_hash", "level", "chunk", "members")
    return {
        **{k: u[k] for k in keys},
        "text": text.text,
        "facets": facets.model_dump_json(),
        "tokens_in": text.tokens_in,
        "tokens_out": text.tokens_out,
    }


def _aggregate(job: dict[str, Any], finals: dict[str, dict[str, Any]], k: Any) -> Aggregate:
    final = finals.get(job["aggregate_id"])
    if final is None:
        raise RuntimeError(f"rollup job {job['aggregate_id']} has no summary")
    facets = RollupFacets.model_validate_json(final["facets"])
    return Aggregate(
        aggregate_id=job["aggregate_id"],
        kind=job["kind"],
        subject=job["subject"],
        window=job["window_size"],
        window_start=datetime.fromisoformat(job["start"]),
        window_end=datetime.fromisoformat(job["end"]),
        accounts=job["accounts"],
        input_hash=job["input_hash"],
        levels=final["levels"],
        backend=k.backend,
        model=k.model,
        prompt_version=k.rollup_prompt_version,
        text=final["text"],
        facets=facets,
        signals=facets.signals(),
        links=[CampaignLink.model_validate(x) for x in job.get("links", [])],
        tokens_in=final["tokens_in"],
        tokens_out=final["tokens_out"],
    )


def _label(start: datetime, size: str) -> str:
    fmt = "%Y-%m-%d" if size not in ("1h", "6h") else "%Y-%m-%d %H:%M"
    return f"{start.strftime(fmt)} ({size})"


def build(ctx: RollupContext) -> StateGraph:
    rs, settings = ctx.rs, ctx.settings
    k = rs.key
    win_s = window_seconds(settings.window)
    period = period_for(settings.window)
    period_s = span_seconds(period)

    def agg_id(kind: str, subject: str, size: str, start: datetime) -> str:
        return digest(kind, subject, size, start.isoformat(), k.backend, k.model)

    # -- planning ---------------------------------------------------------------------

    scope = WindowScope(
        win_s,
        parse_when(settings.since) if settings.since else None,
        parse_when(settings.until) if settings.until else None,
        settings.accounts,
        settings.changed_after,
    )
    changed = None if settings.changed_after is None else (settings.changed_after, period_s)

    def batches_of(phase: str) -> list[list[str]]:
        if phase == "window":
            got = rs.window_batches(scope, PLAN_BATCH)
        else:
            got = rs.window_aggregate_batches(settings.window, PLAN_BATCH, changed)
        return [list(b) for b in got]

    def plan_windows(lo: str, hi: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        stored = rs.stored_hashes("account_window", settings.window, lo, hi)
        jobs, units, unchanged = [], [], 0
        for account, start, ids, lens, content in rs.window_groups(scope, lo, hi):
            job = {
                "aggregate_id": agg_id("account_window", account, settings.window, start),
                "input_hash": digest(content, settings.budget_tokens, k.rollup_prompt_version),
                "kind": "account_window",
                "subject": account,
                "window_size": settings.window,
                "start": start.isoformat(),
                "end": bucket_end(start, win_s).isoformat(),
                "accounts": [account],
                "label": _label(start, settings.window),
                "member_kind": "interaction",
            }
            if stored.get(job["aggregate_id"]) == job["input_hash"]:
                unchanged += 1
                continue
            jobs.append(job)
            toks = [item_tokens(i, n) for i, n in zip(ids, lens, strict=True)]
            units.extend(_units(job, 0, ids, toks, ctx.room))
        return jobs, units, unchanged

    def plan_periods(lo: str, hi: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        groups: dict[tuple[str, datetime], list[tuple[str, str, int]]] = {}
        for aid, account, start, ihash, length in rs.window_aggregates(
            settings.window, lo, hi, changed
        ):
            groups.setdefault((account, bucket_start(start, period_s)), []).append(
                (aid, ihash, length)
            )
        stored = rs.stored_hashes("account_period", period, lo, hi)
        jobs, units, unchanged = [], [], 0
        for (account, pstart), members in groups.items():
            job = {
                "aggregate_id": agg_id(
                    "account_period", account, f"{period}/{settings.window}", pstart
                ),
                "input_hash": digest(*(m[1] for m in members), settings.budget_tokens),
                "kind": "account_period",
                "subject": account,
                "window_size": period,
                "start": pstart.isoformat(),
                "end": bucket_end(pstart, period_s).isoformat(),
                "accounts": [account],
                "label": _label(pstart, period) + f" from {settings.window} windows",
                "member_kind": "aggregate",
            }
            if stored.get(job["aggregate_id"]) == job["input_hash"]:
                unchanged += 1
                continue
            jobs.append(job)
            refs = [m[0] for m in members]
            units.extend(_units(job, 0, refs, [item_tokens(m[0], m[2]) for m in members], ctx.room))
        return jobs, units, unchanged

    def plan_campaigns() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
        if rs.campaign_inputs(settings.window) == rs.last_campaign_inputs(settings.window):
            # no account window changed since the campaigns were last detected
            return [], [], len(rs.stored_hashes("campaign", settings.window)), 0
        found = detect(rs, settings.window)
        by_account: dict[str, list[tuple[str, datetime, str, int]]] = {}
        for aid, account, start, ihash, length in rs.window_aggregates(settings.window):
            by_account.setdefault(account, []).append((aid, start, ihash, length))
        stored = rs.stored_hashes("campaign", settings.window)
        jobs, units, unchanged, keep = [], [], 0, set()
        for camp in found:
            members = [m for a in camp.accounts for m in by_account.get(a, [])]
            if not members:
                continue
            cid = digest("campaign", *camp.accounts, settings.window, k.backend, k.model)
            keep.add(cid)
            links = [link.model_dump() for link in camp.links]
            start = min(m[1] for m in members)
            end = max(m[1] for m in members)
            job = {
                "aggregate_id": cid,
                "input_hash": digest(*(m[2] for m in members), str(links), settings.budget_tokens),
                "kind": "campaign",
                "subject": f"campaign-{cid[:10]}",
                "window_size": settings.window,
                "start": start.isoformat(),
                "end": bucket_end(end, win_s).isoformat(),
                "accounts": camp.accounts,
                "links": links,
                "label": f"{len(camp.accounts)} accounts, {start:%Y-%m-%d} to {end:%Y-%m-%d}",
                "member_kind": "aggregate",
            }
            if stored.get(cid) == job["input_hash"]:
                unchanged += 1
                continue
            jobs.append(job)
            refs = [m[0] for m in members]
            units.extend(_units(job, 0, refs, [item_tokens(m[0], m[3]) for m in members], ctx.room))
        retired = rs.retire("campaign", settings.window, keep)
        return jobs, units, unchanged, retired

    # -- finishing a phase ------------------------------------------------------------

    def finish(phase: str, jobs: list[dict[str, Any]]) -> int:
        # In batches: a phase's aggregates, with their facets, never all in memory at once.
        # Each batch is written whole; a resumed run writes them all again, which is idempotent.
        for n in range(0, len(jobs), FINISH_BATCH):
            batch = jobs[n : n + FINISH_BATCH]
            finals = rs.final_partials(batch)
            rs.write_aggregates([_aggregate(job, finals, k) for job in batch], phase == "window")
        return len(jobs)

    # -- nodes ------------------------------------------------------------------------

    async def advance(state: RollupState) -> dict[str, Any]:
        phase = state.get("phase", "start")
        stats: dict[str, int] = {}
        if phase != "start":
            stats[f"{phase}_rolled"] = finish(phase, state.get("jobs", []))
        if phase == "campaign":  # its aggregates are written: what they were detected on
            rs.remember_campaign_inputs(settings.window, rs.campaign_inputs(settings.window))
        batches = state.get("batches") or []
        if batches:  # the next round of the same phase
            nxt = phase
        else:
            nxt = PHASES[PHASES.index(phase) + 1]
            if nxt == "campaign" and not settings.campaigns:
                nxt = "done"
            if nxt in ("window", "period"):
                batches = batches_of(nxt)
        if nxt == "done":
            out = {"phase": "done", "jobs": [], "units": [], "level": 0, "batches": []}
            return {**out, "stats": stats}
        if nxt == "campaign":
            jobs, units, unchanged, retired = plan_campaigns()
            stats["campaign_found"] = len(jobs) + unchanged
            stats["campaign_retired"] = retired
        elif batches:
            (lo, hi), batches = batches[0], batches[1:]  # never mutate the state's list
            plan = plan_windows if nxt == "window" else plan_periods
            jobs, units, unchanged = plan(lo, hi)
        else:  # nothing to roll up in this phase
            jobs, units, unchanged = [], [], 0
        stats[f"{nxt}_unchanged"] = unchanged
        ctx.on_progress(f"plan:{nxt}", len(units), sum(len(u["members"]) for u in units))
        return {
            "phase": nxt,
            "jobs": jobs,
            "units": units,
            "level": 0,
            "batches": batches,
            "stats": stats,
        }

    sem = asyncio.Semaphore(max(1, settings.concurrency))

    async def reduce(shard: ShardInput) -> dict[str, Any]:
        units = shard["units"]
        model_failures = 0
        loaded: dict[str, Any] = {}
        for kind in {u["member_kind"] for u in units}:
            refs = [m for u in units if u["member_kind"] == kind for m in u["members"]]
            loaded.update(rs.load_members(kind, refs))

        async def one(u: dict[str, Any]) -> dict[str, Any]:
            try:
                return await reduce_unit(u)
            except Exception as exc:  # one unit never stops the pass: recorded and skipped
                reason = f"{type(exc).__name__}: {str(exc)[:300]}"
                rs.store.record_failure("rollup", u["partial_id"], reason)
                failed = RollupText(text=f"[rollup of {len(u['members'])} items failed: {reason}]")
                return _partial_row(u, failed, RollupFacets())

        async def reduce_unit(u: dict[str, Any]) -> dict[str, Any]:
            nonlocal model_failures
            members = [loaded[m] for m in u["members"] if m in loaded]
            facets = RollupFacets.merge([m.facets for m in members])
            request = RollupRequest(
                kind=u["kind"],
                subject=u["subject"],
                window=u["label"],
                level=u["level"],
                items=[RollupItem(ref=m.ref, text=m.text) for m in members],
                signals=facets.signals(),
                digest=_digest_of(facets),
            )
            async with sem:
                try:
                    text = await ctx.summarizer.summarize_rollup(request)
                except SummarizerError as exc:
                    # The counts are ours and intact; say plainly that the prose is not a model's.
                    model_failures += 1
                    reason = str(exc).splitlines()[0][:160]
                    text = RollupText(
                        text=f"[model summary failed: {reason}; computed summary follows] "
                        + (ctx.summarizer.redactor.redact(template_text(request)) or "")
                    )
            return _partial_row(u, text, facets)

        rows = await asyncio.gather(*(one(u) for u in units))
        rs.write_partials(rows)
        await asyncio.sleep(0)  # let the checkpointer record finished shards as they finish
        members = sum(len(u["members"]) for u in units)
        ctx.on_progress("reduce", len(units), members)
        return {
            "stats": {
                "partials": len(rows),
                "model_failures": model_failures,
                "tokens_in": sum(r["tokens_in"] for r in rows),
                "tokens_out": sum(r["tokens_out"] for r in rows),
            }
        }

    async def collect(state: RollupState) -> dict[str, Any]:
        level = state["level"]
        by_job: dict[str, list[dict[str, Any]]] = {}
        for u in state["units"]:
            by_job.setdefault(u["aggregate_id"], []).append(u)
        pending = [us for us in by_job.values() if len(us) > 1]
        lengths = rs.partial_lengths([u["partial_id"] for us in pending for u in us])
        jobs = {j["aggregate_id"]: j for j in state["jobs"]}
        units: list[dict[str, Any]] = []
        for us in pending:
            us.sort(key=lambda u: u["chunk"])
            refs = [u["partial_id"] for u in us]
            toks = [item_tokens(r, lengths[r]) for r in refs]
            units.extend(_units(jobs[us[0]["aggregate_id"]], level + 1, refs, toks, ctx.room))
        ctx.on_progress("level", len(units), sum(len(u["members"]) for u in units))
        return {"units": units, "level": level + 1, "stats": {"levels": 1 if units else 0}}

    def route(state: RollupState) -> Any:
        if state.get("phase") == "done":
            return END
        units = state.get("units") or []
        if not units:
            return "advance"
        return [Send("reduce", {"units": s}) for s in _shards(units, settings.shard_size)]

    g = StateGraph(RollupState)
    g.add_node("advance", advance)
    g.add_node("reduce", reduce, input_schema=ShardInput)
    g.add_node("collect", collect)
    g.add_edge(START, "advance")
    g.add_conditional_edges("advance", route, ["reduce", "advance", END])
    g.add_edge("reduce", "collect")
    g.add_conditional_edges("collect", route, ["reduce", "advance", END])
    return g


__all__ = ["RollupContext", "RollupSettings", "RollupState", "build", "chunk"]
