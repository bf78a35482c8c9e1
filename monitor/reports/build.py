"""Reading one report's worth of data from the store.

Everything a report shows that came from a trace is redacted: excerpts come from summaries and
verdict quotes (redacted when written), and the step-by-step drill-down redacts the raw steps
here with the deployment's key before they reach the terminal, a file or `--json`.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tracewatch.monitor.aggregates import Aggregate
from tracewatch.monitor.decisions import rubric_precision
from tracewatch.monitor.guard import catches
from tracewatch.monitor.judge import read_aggregates
from tracewatch.monitor.models import Step
from tracewatch.monitor.queue import STATUSES, Case, Queue
from tracewatch.monitor.reports.models import (
    AccountReport,
    AuditRow,
    BackendRow,
    CaseReport,
    CaseRow,
    DayRow,
    DecisionRow,
    DuplicateGroup,
    EvidenceRow,
    HourBin,
    InteractionReport,
    LinkRow,
    MemberRow,
    OverviewReport,
    ProcessingStats,
    QueueDepthRow,
    StepRow,
    Timeline,
    TopAccount,
    TopCampaign,
    WindowRow,
)
from tracewatch.monitor.store import Store
from tracewatch.summarizers.redaction import Redactor, load_key
from tracewatch.summarizers.secrets import scoped

_KINDS = ("account_window", "account_period", "campaign")
# (stage, table, who made it, tokens in, tokens out) for the processing figures
_STAGES = (
    ("summaries", "summaries", "backend", "tokens_in", "tokens_out"),
    ("rollups", "aggregates", "backend", "tokens_in", "tokens_out"),
    (
        "verdicts",
        "verdicts",
        "'judge ' || judge",
        "CAST(verdict ->> 'tokens_in' AS BIGINT)",
        "CAST(verdict ->> 'tokens_out' AS BIGINT)",
    ),
)
# what a case report copies from the case as it is (the evidence ids become rows instead)
_FROM_CASE = (set(CaseReport.model_fields) & set(Case.model_fields)) - {"evidence"}
EXCERPT_CHARS = 220
GROUPS_SHOWN = 5


class ReportError(ValueError):
    """The report cannot be made as asked (an unknown id); the message says what to do."""


class ReportEmpty(Exception):
    """Nothing to report yet; the message is guidance, not an error."""


def _one(store: Store, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    """The first row, with the result fully consumed: DuckDB refuses to register a table on a
    connection that still has a pending result."""
    rows = store.con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def _has_table(store: Store, name: str) -> bool:
    row = _one(store, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
    return bool(row and row[0])


def _count(store: Store, table: str, where: str = "true", params: Sequence[Any] = ()) -> int:
    if not _has_table(store, table):
        return 0
    row = _one(store, f"SELECT count(*) FROM {table} WHERE {where}", params)
    return int(row[0]) if row else 0


def require_data(store: Store) -> None:
    if _count(store, "interactions") == 0:
        raise ReportEmpty(
            f"{store.path} holds no interactions yet. Ingest and process traces first:\n"
            "  tracewatch run PATH... --db " + store.path + "\n"
            "(or try the whole pipeline on a generated corpus with `make demo`)."
        )


def _require_cases(store: Store) -> None:
    require_data(store)
    if _count(store, "cases") == 0:
        raise ReportEmpty(
            "no cases in the queue yet: nothing has been judged, or nothing was flagged. "
            f"Run `tracewatch judge --db {store.path}` (tracewatch run ends with it), then "
            "`tracewatch report overview`."
        )


def _clip(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- shared pieces -----------------------------------------------------------------------------


def timeline(starts: Iterable[int | float | datetime], start: datetime, end: datetime) -> Timeline:
    """Interactions per UTC hour between start and end (only hours with activity are kept)."""
    bins: Counter[datetime] = Counter()
    for s in starts:
        at = s if isinstance(s, datetime) else datetime.fromtimestamp(s, UTC)
        at = at.astimezone(UTC)
        if start <= at < end or (at == end == start):
            bins[at.replace(minute=0, second=0, microsecond=0)] += 1
    hours = [HourBin(hour=h, n=n) for h, n in sorted(bins.items())]
    return Timeline(
        start=start,
        end=end,
        total=sum(bins.values()),
        busiest_hour=max(bins.values(), default=0),
        hours=hours,
    )


def _aggregate(store: Store, aggregate_id: str) -> Aggregate | None:
    found = read_aggregates(store, _KINDS, ids=[aggregate_id])
    return found[0] if found else None


def _summaries(
    store: Store, ids: Sequence[str], backend: str | None, model: str | None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Summary text and facets per interaction id, preferring the given backend and model."""
    if not ids or not _has_table(store, "summaries"):
        return {}
    rows = store.con.execute(
        "SELECT i.interaction_id, s.text, s.facets, (s.backend = ? AND s.model = ?) AS pref,"
        " s.created_at FROM interactions i JOIN summaries s ON s.content_hash = i.content_hash"
        " WHERE i.interaction_id IN (SELECT unnest(?)) ORDER BY pref, s.created_at",
        [backend or "", model or "", list(ids)],
    ).fetchall()
    return {r[0]: (r[1], orjson.loads(r[2])) for r in rows}  # the preferred, newest wins


def _heads(store: Store, ids: Sequence[str]) -> dict[str, tuple[str, datetime, list[str]]]:
    if not ids:
        return {}
    rows = store.con.execute(
        "SELECT interaction_id, account_id, started_at, domains FROM interactions"
        " WHERE interaction_id IN (SELECT unnest(?))",
        [list(ids)],
    ).fetchall()
    return {r[0]: (r[1], r[2], list(r[3] or [])) for r in rows}


def _evidence(store: Store, c: Case, agg: Aggregate | None) -> list[EvidenceRow]:
    quotes: dict[str, str] = {}
    for q in c.quotes:
        quotes.setdefault(str(q.get("interaction_id")), str(q.get("text") or ""))
    heads = _heads(store, c.evidence)
    sums = _summaries(store, c.evidence, agg.backend if agg else None, agg.model if agg else None)
    rows = []
    for iid in c.evidence:
        account, at, domains = heads.get(iid, (None, None, []))
        text, facets = sums.get(iid, ("", {}))
        posted = facets.get("posted") or []
        site = None
        excerpt = quotes.get(iid)
        if posted:
            site = posted[0].get("target")
            excerpt = excerpt or posted[0].get("text")
        if not site:
            targets = facets.get("targets") or []
            site = targets[0] if targets else (domains[0] if domains else None)
        rows.append(
            EvidenceRow(
                interaction_id=iid,
                account=account,
                at=at,
                site=site,
                excerpt=_clip(excerpt or text or "(no summary)"),
                quoted=iid in quotes,
            )
        )
    rows.sort(key=lambda r: (r.at or datetime.min.replace(tzinfo=UTC), r.interaction_id))
    return rows


def _duplicate_groups(agg: Aggregate) -> list[DuplicateGroup]:
    groups = sorted(agg.facets.content, key=lambda g: (-g.n, -len(g.domains), g.rep_id))
    return [
        DuplicateGroup(
            copies=g.n,
            sites=len(g.domains),
            accounts=len(g.accounts),
            text=_clip(g.text, 160),
            interaction_ids=g.ids[:8],
        )
        for g in groups
        if g.n >= 2
    ][:GROUPS_SHOWN]


def _members(agg: Aggregate, named: Sequence[str]) -> tuple[list[MemberRow], list[LinkRow]]:
    ties: dict[str, Counter[str]] = defaultdict(Counter)
    for link in agg.links:
        for a in link.accounts:
            ties[a][link.kind] += 1
    members = [
        MemberRow(account=a, interactions=n, named=a in named, ties=dict(sorted(ties[a].items())))
        for a, n in sorted(agg.facets.accounts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    # Narrative ties are between pairs and say the same thing for each: one row naming the
    # pairs reads better than a row per pair.
    paired = [k for k in agg.links if k.kind in _PAIR_KINDS]
    links = [
        LinkRow(kind=k.kind, key=_clip(k.key, 160), accounts=k.accounts, interaction_ids=k.ids[:8])
        for k in sorted(agg.links, key=lambda k: (-len(k.accounts), k.kind, k.key))
        if k.kind not in _PAIR_KINDS
    ]
    for kind in sorted({k.kind for k in paired}):
        pairs = sorted(" & ".join(k.accounts) for k in paired if k.kind == kind)
        accounts = sorted({a for k in paired if k.kind == kind for a in k.accounts})
        key = f"{len(pairs)} pair(s): {paired_what(kind)}: " + ", ".join(pairs)
        links.append(LinkRow(kind=kind, key=_clip(key, 300), accounts=accounts, interaction_ids=[]))
    return members, links


_PAIR_KINDS = ("narrative",)


def paired_what(kind: str) -> str:
    return {"narrative": "posts share rare wording beyond the population"}[kind]


# -- the reports -------------------------------------------------------------------------------


def resolve_case_id(store: Store, case_id: str | None, top: bool = False) -> str:
    """An exact id, a unique prefix of one, or (top) the open case of highest priority."""
    _require_cases(store)
    if top:
        row = _one(
            store,
            "SELECT case_id FROM cases WHERE status IN ('open', 'in_review')"
            " ORDER BY priority DESC, case_id LIMIT 1",
        )
        if row is None:
            raise ReportEmpty("no open cases: every case has been decided")
        return str(row[0])
    if not case_id:
        raise ReportError("name a case (an id from `tracewatch queue list`) or pass --top")
    rows = store.con.execute(
        "SELECT case_id FROM cases WHERE case_id = ? OR starts_with(case_id, ?) ORDER BY 1",
        [case_id, case_id],
    ).fetchall()
    exact = [r[0] for r in rows if r[0] == case_id]
    if exact:
        return exact[0]
    if len(rows) == 1:
        return str(rows[0][0])
    if rows:
        raise ReportError(
            f"{case_id!r} matches {len(rows)} cases ({', '.join(r[0] for r in rows[:5])}); "
            "give more of the id"
        )
    raise ReportError(f"no case {case_id!r}; see `tracewatch queue list` for case ids")


def build_case(store: Store, case_id: str | None, top: bool = False) -> CaseReport:
    """The case named by `case_id` (or a unique prefix), or with `top` the next to review."""
    q = Queue(store)
    c = q.get(resolve_case_id(store, case_id, top))
    agg = _aggregate(store, c.aggregate_id)
    row = _one(
        store,
        "SELECT verdict ->> 'threshold_source' FROM verdicts WHERE verdict_id = ?",
        [c.verdict_id],
    )
    report = CaseReport(
        **c.model_dump(include=_FROM_CASE),
        calibrated=(row[0] == "calibrated") if row and row[0] else None,
        evidence=_evidence(store, c, agg),
        audit=[
            AuditRow(
                at=e.at,
                actor=e.actor,
                event=e.event,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
            )
            for e in q.events(c.case_id)
        ],
    )
    if agg is not None:
        report.summary = agg.text
        report.summary_levels = agg.levels
        report.interactions = agg.facets.n_interactions
        report.timeline = timeline(agg.facets.starts, report.window_start, report.window_end)
        report.duplicate_groups = _duplicate_groups(agg)
        if agg.kind == "campaign":
            report.members, report.links = _members(agg, c.accounts)
    return report


def build_interaction(store: Store, interaction_id: str) -> InteractionReport:
    """Redacted with the deployment's key, so pseudonyms match those in summaries."""
    redactor = Redactor(load_key(store.path))
    require_data(store)
    loaded = store.load_interactions([interaction_id])
    if not loaded:
        raise ReportError(
            f"no interaction {interaction_id!r}; evidence ids are listed in "
            "`tracewatch report case CASE`"
        )
    inter = loaded[0]
    redactor = scoped(redactor, inter)  # its secrets go by value, wherever they appear
    head = _one(
        store,
        "SELECT source_file, source_line, domains FROM interactions WHERE interaction_id = ?",
        [interaction_id],
    )
    source = None
    if head and head[0]:
        source = f"{head[0]}:{head[1]}" if head[1] is not None else str(head[0])
    summary = (
        _one(
            store,
            "SELECT text, backend || ' ' || model FROM summaries WHERE content_hash = ?"
            " ORDER BY created_at DESC LIMIT 1",
            [inter.content_hash],
        )
        if _has_table(store, "summaries")
        else None
    )
    cases = (
        [
            r[0]
            for r in store.con.execute(
                "SELECT case_id FROM cases WHERE list_contains(evidence, ?) ORDER BY priority DESC",
                [interaction_id],
            ).fetchall()
        ]
        if _has_table(store, "cases")
        else []
    )
    report = InteractionReport(
        interaction_id=inter.interaction_id,
        account=inter.account_id,
        source_format=inter.source_format,
        started_at=inter.started_at,
        ended_at=inter.ended_at,
        agent=inter.agent,
        model=inter.model,
        content_hash=inter.content_hash,
        source=redactor.redact(source),
        domains=list(head[2] or []) if head else [],
        summary=summary[0] if summary else None,
        summary_backend=summary[1] if summary else None,
        steps=[_step_row(s, redactor) for s in inter.steps],
        cases=cases,
    )
    # the last guard: a secret another interaction showed is not printed from this one
    guard = store.guard
    cleaned = guard.clean_json(report.model_dump_json(), "report")
    if guard.caught and not store.read_only:
        guard.flush()
    guard.caught = {}
    return InteractionReport.model_validate_json(cleaned)


def _step_row(s: Step, r: Redactor) -> StepRow:
    what = " ".join(x for x in (s.tool_name, s.action if s.action != s.tool_name else None) if x)
    typed = s.typed_text
    if typed is not None:
        detail = f'typed "{_clip(r.typed(typed), 300)}"'
    elif s.text:
        detail = _clip(r.redact(s.text), 600)
    elif s.arguments:
        args = {k: v for k, v in s.arguments.items() if k not in ("element", "action")}
        detail = _clip(r.redact(orjson.dumps(args, default=str).decode()), 300) if args else ""
    else:
        detail = ""
    target = _clip(r.redact(s.target_url or s.target_app), 160) or None
    return StepRow(
        index=s.index,
        at=s.timestamp,
        actor=s.actor.value,
        kind=s.kind.value,
        what=what,
        target=None if typed and typed == s.target_url else target,
        detail=detail,
        result=_clip(r.redact(s.result), 300) or None,
        is_error=s.is_error,
        attachments=[
            f"{a.media_type} {_size(a.size)} sha256:{a.sha256[:16]}" for a in s.attachments
        ],
    )


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def build_overview(store: Store, since: datetime | None = None, top: int = 10) -> OverviewReport:
    require_data(store)
    has_cases = _has_table(store, "cases")
    since_p = since or datetime(1970, 1, 1, tzinfo=UTC)
    queue: list[QueueDepthRow] = []
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    top_accounts: list[TopAccount] = []
    top_campaigns: list[TopCampaign] = []
    decisions: list[DecisionRow] = []
    if has_cases:
        depth: dict[str, Counter[str]] = defaultdict(Counter)
        for rubric, status, n in store.con.execute(
            "SELECT rubric_id, status, count(*) FROM cases GROUP BY 1, 2"
        ).fetchall():
            depth[rubric][status] = n
        queue = [
            QueueDepthRow(
                rubric=rubric,
                by_status={s: by[s] for s in STATUSES},
                total=sum(by.values()),
            )
            for rubric, by in sorted(depth.items(), key=lambda kv: (-kv[1]["open"], kv[0]))
        ]
        for day, n in store.con.execute(
            "SELECT strftime(opened_at AT TIME ZONE 'UTC', '%Y-%m-%d'), count(*) FROM cases"
            " WHERE opened_at >= ? GROUP BY 1",
            [since_p],
        ).fetchall():
            days[day][0] = n
        for day, n in store.con.execute(
            "SELECT strftime(closed_at AT TIME ZONE 'UTC', '%Y-%m-%d'), count(*) FROM cases"
            " WHERE closed_at IS NOT NULL AND closed_at >= ? GROUP BY 1",
            [since_p],
        ).fetchall():
            days[day][1] = n
        acct: dict[str, list[Any]] = {}
        for accounts, rubric, prio in store.con.execute(
            "SELECT accounts, rubric_id, priority FROM cases"
            " WHERE status IN ('open', 'in_review') AND subject_type = 'account'"
        ).fetchall():
            for a in accounts:
                entry = acct.setdefault(a, [0, 0.0, set()])
                entry[0] += 1
                entry[1] += prio
                entry[2].add(rubric)
        top_accounts = [
            TopAccount(account=a, cases=e[0], priority=round(e[1], 2), rubrics=sorted(e[2]))
            for a, e in sorted(acct.items(), key=lambda kv: (-kv[1][1], kv[0]))[:top]
        ]
        top_campaigns = [
            TopCampaign(
                case_id=r[0],
                subject=r[1],
                accounts=len(r[2]),
                rubric=r[3],
                score=r[4],
                priority=r[5],
                status=r[6],
            )
            for r in store.con.execute(
                "SELECT case_id, subject, accounts, rubric_id, score, priority, status FROM cases"
                " WHERE subject_type = 'campaign' AND status IN ('open', 'in_review')"
                f" ORDER BY priority DESC, case_id LIMIT {int(top)}"
            ).fetchall()
        ]
        per: dict[str, Counter[str]] = defaultdict(Counter)
        hours: dict[str, list[float]] = defaultdict(list)
        for reviewer, status, action, opened, closed in store.con.execute(
            "SELECT coalesce(reviewer, '(none)'), status, action, opened_at, closed_at FROM cases"
            " WHERE closed_at IS NOT NULL AND closed_at >= ?",
            [since_p],
        ).fetchall():
            per[reviewer]["dismissed" if status == "dismissed" else (action or status)] += 1
            hours[reviewer].append((closed - opened).total_seconds() / 3600)
        decisions = [
            DecisionRow(
                reviewer=r,
                decisions=dict(sorted(c.items())),
                total=sum(c.values()),
                median_hours_to_close=round(statistics.median(hours[r]), 1),
            )
            for r, c in sorted(per.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ]
    return OverviewReport(
        since=since,
        queue=queue,
        statuses=list(STATUSES),
        days=[DayRow(day=d, opened=v[0], closed=v[1]) for d, v in sorted(days.items())],
        top_accounts=top_accounts,
        top_campaigns=top_campaigns,
        decisions=decisions,
        rubric_precision=rubric_precision(store) if has_cases else [],
        secrets_caught=_guard_catches(store),
        processing=_processing(store, since_p),
    )


def _guard_catches(store: Store) -> dict[str, int]:
    """What the last guard caught, by stage (a table older databases do not have)."""
    return catches(store.con) if _has_table(store, "guard_catches") else {}


def _processing(store: Store, since: datetime) -> ProcessingStats:
    row = _one(
        store,
        "SELECT count(*), count(DISTINCT account_id), min(started_at), max(started_at)"
        " FROM interactions WHERE ingested_at >= ?",
        [since],
    )
    assert row is not None
    backends = [
        BackendRow(
            stage=stage,
            backend=b,
            model=m,
            count=n,
            tokens_in=int(ti or 0),
            tokens_out=int(to or 0),
        )
        for stage, table, who, tin, tout in _STAGES
        if _has_table(store, table)
        for b, m, n, ti, to in store.con.execute(
            f"SELECT {who}, model, count(*), sum({tin}), sum({tout}) FROM {table}"
            " WHERE created_at >= ? GROUP BY 1, 2 ORDER BY 1, 2",
            [since],
        ).fetchall()
    ]
    if _has_table(store, "summary_failures"):
        rows = {(b.backend, b.model): b for b in backends if b.stage == "summaries"}
        for b, m, n in store.con.execute(
            "SELECT backend, model, count(*) FROM summary_failures WHERE failed_at >= ?"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            [since],
        ).fetchall():
            if (b, m) not in rows:
                rows[b, m] = BackendRow(
                    stage="summaries", backend=b, model=m, count=0, tokens_in=0, tokens_out=0
                )
                backends.insert(0, rows[b, m])
            rows[b, m].failures = n
    return ProcessingStats(
        interactions=int(row[0]),
        accounts=int(row[1]),
        quarantined=_count(store, "quarantine", "received_at >= ?", [since]),
        first_at=row[2],
        last_at=row[3],
        backends=backends,
    )


def _window_row(agg: Aggregate, verdicts: dict[str, list[tuple[str, float, bool]]]) -> WindowRow:
    posts = sum(g.n for g in agg.facets.content)
    dup = agg.signals.get("duplicate_post_share")
    vs = verdicts.get(agg.aggregate_id, [])
    return WindowRow(
        aggregate_id=agg.aggregate_id,
        kind=agg.kind,
        window=agg.window,
        window_start=agg.window_start,
        window_end=agg.window_end,
        interactions=agg.facets.n_interactions,
        domains=len(agg.facets.domains),
        posts=posts,
        duplicate_share=float(dup) if isinstance(dup, int | float) else None,
        verdicts={r: round(s, 3) for r, s, _ in sorted(vs, key=lambda x: -x[1])[:3] if s > 0},
        flagged=sorted(r for r, _, f in vs if f),
    )


def build_account(store: Store, account: str) -> AccountReport:
    require_data(store)
    rows = store.con.execute(
        "SELECT started_at, source_format, domains FROM interactions WHERE account_id = ?"
        " ORDER BY started_at",
        [account],
    ).fetchall()
    if not rows:
        similar = [
            r[0]
            for r in store.con.execute(
                "SELECT DISTINCT account_id FROM interactions WHERE contains(account_id, ?)"
                " ORDER BY 1 LIMIT 5",
                [account],
            ).fetchall()
        ]
        hint = f" (did you mean {', '.join(similar)}?)" if similar else ""
        raise ReportError(f"no interactions for account {account!r}{hint}; see `tracewatch stats`")
    starts = [r[0].astimezone(UTC) for r in rows]
    formats = Counter(r[1] for r in rows)
    domains = Counter(d for r in rows for d in (r[2] or []))
    first, last = starts[0], starts[-1]
    day0 = first.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    verdicts: dict[str, list[tuple[str, float, bool]]] = defaultdict(list)
    if _has_table(store, "verdicts"):
        for aid, rubric, score, flagged in store.con.execute(
            "SELECT aggregate_id, rubric_id, score, flagged FROM verdicts"
            " WHERE list_contains(accounts, ?) OR subject = ?",
            [account, account],
        ).fetchall():
            verdicts[aid].append((rubric, score, flagged))
    windows, campaigns = [], []
    if _has_table(store, "aggregates"):
        for agg in read_aggregates(store, _KINDS, account=account):
            if agg.kind == "campaign":
                campaigns.append(_window_row(agg, verdicts))
            elif agg.subject == account:
                windows.append(_window_row(agg, verdicts))
    windows.sort(key=lambda w: (w.kind != "account_window", w.window_start))
    cases = []
    if _has_table(store, "cases"):
        cases = [
            CaseRow(**c.model_dump(include=set(CaseRow.model_fields)))
            for c in Queue(store).list(account=account)
        ]
    return AccountReport(
        account=account,
        interactions=len(rows),
        first_at=first,
        last_at=last,
        formats=dict(formats.most_common()),
        top_domains=dict(domains.most_common(8)),
        timeline=timeline(starts, day0, day_end),
        windows=windows,
        campaigns=campaigns,
        cases=cases,
    )
