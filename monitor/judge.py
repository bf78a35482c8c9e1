"""Judge the rollup's aggregates against the rubrics and feed the enforcement queue.

The library call behind `tracewatch judge` and the last step of `tracewatch run`. Judging is
incremental: a verdict is kept while its aggregate's input hash, the rubric version, the
threshold and the judge's model are what they were, so a re-run judges only what changed and
hands the queue only verdicts that can change a case.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tracewatch.monitor.aggregates import Aggregate, CampaignLink, RollupFacets
from tracewatch.monitor.population import with_population
from tracewatch.monitor.queue import Queue, UpsertReport
from tracewatch.monitor.store import Store, transaction
from tracewatch.rubrics.loader import load_calibrations, load_rubrics, threshold_for
from tracewatch.rubrics.models import Calibration, Rubric, Verdict
from tracewatch.rubrics.verdicts import verdict_id


class Judge(Protocol):
    name: str
    model: str

    async def ajudge(
        self, agg: Aggregate, rubric: Rubric, threshold: float, threshold_source: str
    ) -> Verdict: ...


class JudgeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric_dirs: list[Path] = Field(default_factory=list)
    rubrics: list[str] = Field(default_factory=list, description="only these rubric ids")
    backend: str | None = Field(None, description="judge aggregates rolled up by this backend")
    model: str | None = None
    concurrency: int = Field(8, ge=1)
    rejudge: bool = Field(False, description="judge again even where nothing changed")


class JudgeReport(BaseModel):
    judge: str
    model: str
    rubrics: int = 0
    aggregates: int = 0
    judged: int = 0
    unchanged: int = 0
    failed: int = 0
    failures: list[str] = Field(default_factory=list)
    flagged: int = 0
    flagged_by_rubric: dict[str, int] = Field(default_factory=dict)
    calibrated_rubrics: int = 0
    queue: UpsertReport = Field(default_factory=UpsertReport)
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0


def _inputs(
    store: Store,
    judge: Judge,
    rubrics: list[Rubric],
    thresholds: dict[str, Any],
    kinds: list[str],
    options: JudgeOptions,
) -> tuple[str, str]:
    """(what this judgement covers, a digest of everything its verdicts depend on): the
    aggregates (their inputs, hence their population), the rubrics and their thresholds."""
    scope = orjson.dumps(
        {"kinds": kinds, "backend": options.backend, "model": options.model}
    ).decode()
    aggs = store.aggregates_digest(kinds, backend=options.backend, model=options.model)
    rules = orjson.dumps(
        [[r.model_dump(mode="json"), thresholds[r.id][0]] for r in rubrics] + [judge.model, aggs]
    )
    return scope, hashlib.sha256(rules).hexdigest()


def _last_inputs(store: Store, judge: str, scope: str) -> str | None:
    rows = store.con.execute(
        "SELECT digest FROM judge_inputs WHERE judge = ? AND scope = ?", [judge, scope]
    ).fetchall()
    return rows[0][0] if rows else None


_NO_FACETS = RollupFacets()
JUDGE_BATCH = 500  # whole aggregates held at once while judging


def read_aggregates(
    store: Store,
    kinds: Sequence[str],
    backend: str | None = None,
    model: str | None = None,
    ids: Sequence[str] | None = None,
    account: str | None = None,
    light: bool = False,
) -> list[Aggregate]:
    """Aggregates as stored. `light`: without their text, facets and links (empty), which is
    all the population and the check for what is out of date read."""
    heavy = "NULL, NULL, signals, NULL" if light else "text, facets, signals, links"
    sql = (
        "SELECT aggregate_id, kind, subject, window_size, window_start, window_end, accounts,"
        f" input_hash, levels, backend, model, prompt_version, {heavy},"
        " tokens_in, tokens_out FROM aggregates WHERE kind IN (SELECT unnest(?))"
    )
    params: list[Any] = [list(kinds)]
    if backend:
        sql += " AND backend = ?"
        params.append(backend)
    if model:
        sql += " AND model = ?"
        params.append(model)
    if ids is not None:
        sql += " AND aggregate_id IN (SELECT unnest(?))"
        params.append(list(ids))
    if account is not None:
        sql += " AND list_contains(accounts, ?)"
        params.append(account)
    out = []
    for r in store.con.execute(sql + " ORDER BY kind, subject, window_start", params).fetchall():
        out.append(
            Aggregate.model_construct(
                aggregate_id=r[0],
                kind=r[1],
                subject=r[2],
                window=r[3],
                window_start=r[4],
                window_end=r[5],
                accounts=list(r[6]),
                input_hash=r[7],
                levels=r[8],
                backend=r[9],
                model=r[10],
                prompt_version=r[11],
                text=r[12] or "",
                facets=_NO_FACETS if light else RollupFacets.model_validate_json(r[13]),
                signals=orjson.loads(r[14]),
                links=[]
                if light
                else [CampaignLink.model_validate(x) for x in orjson.loads(r[15])],
                tokens_in=r[16],
                tokens_out=r[17],
            )
        )
    return out


def write_verdicts(store: Store, verdicts: Sequence[Verdict]) -> None:
    if not verdicts:
        return
    ts = pa.timestamp("us", tz="UTC")
    table = pa.table(
        {
            "verdict_id": [v.verdict_id for v in verdicts],
            "aggregate_id": [v.aggregate_id for v in verdicts],
            "aggregate_kind": [v.aggregate_kind for v in verdicts],
            "input_hash": [v.input_hash for v in verdicts],
            "subject": [v.subject for v in verdicts],
            "accounts": pa.array([v.accounts for v in verdicts], pa.list_(pa.string())),
            "window_size": [v.window for v in verdicts],
            "window_start": pa.array([v.window_start for v in verdicts], ts),
            "window_end": pa.array([v.window_end for v in verdicts], ts),
            "rubric_id": [v.rubric_id for v in verdicts],
            "rubric_version": pa.array([v.rubric_version for v in verdicts], pa.int32()),
            "judge": [v.judge for v in verdicts],
            "model": [v.model for v in verdicts],
            "threshold": [v.threshold for v in verdicts],
            "score": [v.score for v in verdicts],
            "flagged": [v.flagged for v in verdicts],
            "verdict": [store.guard.clean_json(v.model_dump_json(), "verdict") for v in verdicts],
            "created_at": pa.array([v.created_at for v in verdicts], ts),
        }
    )
    con = store.con
    try:
        with transaction(con):
            con.register("_tw_v", table)
            con.execute("DELETE FROM verdicts WHERE verdict_id IN (SELECT verdict_id FROM _tw_v)")
            con.execute("INSERT INTO verdicts SELECT * FROM _tw_v")
            store.guard.flush()
    finally:
        con.unregister("_tw_v")


def read_verdicts(store: Store, judge: str | None = None) -> list[Verdict]:
    sql = "SELECT verdict FROM verdicts"
    params: list[Any] = []
    if judge:
        sql += " WHERE judge = ?"
        params.append(judge)
    return [Verdict.model_validate_json(r[0]) for r in store.con.execute(sql, params).fetchall()]


def _stored(store: Store, judge: str) -> dict[str, tuple[str, int, float, str]]:
    return {
        r[0]: (r[1], r[2], r[3], r[4])
        for r in store.con.execute(
            "SELECT verdict_id, input_hash, rubric_version, threshold, model FROM verdicts"
            " WHERE judge = ?",
            [judge],
        ).fetchall()
    }


async def run_judge(
    store: Store,
    judge: Judge,
    options: JudgeOptions,
    rubrics: list[Rubric] | None = None,
    calibrations: list[Calibration] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> JudgeReport:
    t0 = time.perf_counter()
    rubrics = rubrics if rubrics is not None else load_rubrics(options.rubric_dirs)
    if options.rubrics:
        unknown = sorted(set(options.rubrics) - {r.id for r in rubrics})
        if unknown:
            raise ValueError(
                f"unknown rubric(s) {', '.join(unknown)}; known: {', '.join(r.id for r in rubrics)}"
            )
        rubrics = [r for r in rubrics if r.id in options.rubrics]
    calibrations = calibrations if calibrations is not None else load_calibrations()
    report = JudgeReport(judge=judge.name, model=judge.model, rubrics=len(rubrics))
    kinds = sorted({k for r in rubrics for k in r.applies_to})
    thresholds = {r.id: threshold_for(r, judge.name, calibrations) for r in rubrics}
    scope, digest = _inputs(store, judge, rubrics, thresholds, kinds, options)
    if not options.rejudge and _last_inputs(store, judge.name, scope) == digest:
        # nothing a verdict is judged on moved since the last judgement: nothing to read
        n = store.con.execute(
            "SELECT count(*) FROM verdicts WHERE judge = ?", [judge.name]
        ).fetchall()[0][0]
        report.unchanged = int(n)
        report.calibrated_rubrics = sum(1 for t in thresholds.values() if t[1] == "calibrated")
        report.seconds = round(time.perf_counter() - t0, 2)
        return report
    # What is out of date is found on the aggregates without their facets (the population
    # reads only signals); only those to judge are read whole.
    aggs = with_population(
        read_aggregates(store, kinds, options.backend, options.model, light=True)
    )
    report.aggregates = len(aggs)
    stored = {} if options.rejudge else _stored(store, judge.name)
    report.calibrated_rubrics = sum(1 for t in thresholds.values() if t[1] == "calibrated")
    stale: list[tuple[Aggregate, Rubric]] = []
    for agg in aggs:
        for r in rubrics:
            if agg.kind not in r.applies_to:
                continue
            vid = verdict_id(agg.aggregate_id, r.id, judge.name)
            if stored.get(vid) == (agg.input_hash, r.version, thresholds[r.id][0], judge.model):
                report.unchanged += 1
                continue
            stale.append((agg, r))
    sem = asyncio.Semaphore(options.concurrency)
    done = 0

    async def one(agg: Aggregate, r: Rubric) -> Verdict | str:
        nonlocal done
        async with sem:
            try:
                return await judge.ajudge(agg, r, *thresholds[r.id])
            except Exception as exc:  # a failed judgement is recorded, never turned into a pass
                return f"{agg.subject} / {r.id}: {type(exc).__name__}: {exc}"
            finally:
                done += 1
                if progress:
                    progress(done, len(stale))

    # Whole aggregates (with their facets) are read JUDGE_BATCH at a time, judged, and let go:
    # a tick that moves a week's population re-judges thousands of account periods.
    at: dict[str, list[int]] = {}  # aggregate id -> its places in `stale`
    for n, (a, _) in enumerate(stale):
        at.setdefault(a.aggregate_id, []).append(n)
    ids = list(at)
    results: list[Verdict | str] = [
        f"{a.subject} / {r.id}: the aggregate is no longer stored" for a, r in stale
    ]
    for start in range(0, len(ids), JUDGE_BATCH):
        batch = ids[start : start + JUDGE_BATCH]
        whole = read_aggregates(store, kinds, options.backend, options.model, ids=batch)
        places: list[int] = []
        calls = []
        for agg in whole:
            light = stale[at[agg.aggregate_id][0]][0]
            # the population's signals on the whole aggregate
            full = agg.model_copy(update={"signals": light.signals, "input_hash": light.input_hash})
            for n in at[agg.aggregate_id]:
                places.append(n)
                calls.append(one(full, stale[n][1]))
        for n, res in zip(places, await asyncio.gather(*calls), strict=True):
            results[n] = res
        del whole, calls
    verdicts = [v for v in results if isinstance(v, Verdict)]
    report.failures = [v for v in results if isinstance(v, str)][:20]
    for (agg, r), res in zip(stale, results, strict=True):
        if isinstance(res, str):  # kept, so /readyz, /metrics and `stats` can say so
            store.record_failure("judge", verdict_id(agg.aggregate_id, r.id, judge.name), res)
    report.failed = len(results) - len(verdicts)
    report.judged = len(verdicts)
    write_verdicts(store, verdicts)
    # Verdicts on aggregates that are gone (retired campaigns) or that a rubric no longer
    # applies to are not current; cases they opened stay, with their audit trail.
    store.con.execute(
        "DELETE FROM verdicts WHERE aggregate_id NOT IN (SELECT aggregate_id FROM aggregates)"
    )
    for r in rubrics:
        store.con.execute(
            "DELETE FROM verdicts WHERE judge = ? AND rubric_id = ?"
            " AND aggregate_kind NOT IN (SELECT unnest(?))",
            [judge.name, r.id, list(r.applies_to)],
        )
    report.queue = Queue(store).upsert(verdicts, actor=f"judge:{judge.name}")
    if not report.failed:  # a failed judgement is tried again next time
        store.con.execute(
            "INSERT OR REPLACE INTO judge_inputs VALUES (?, ?, ?)", [judge.name, scope, digest]
        )
    flagged = Counter(v.rubric_id for v in verdicts if v.flagged)
    report.flagged = sum(flagged.values())
    report.flagged_by_rubric = dict(sorted(flagged.items()))
    report.tokens_in = sum(v.tokens_in for v in verdicts)
    report.tokens_out = sum(v.tokens_out for v in verdicts)
    report.seconds = round(time.perf_counter() - t0, 2)
    return report
