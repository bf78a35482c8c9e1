"""Drawing the reports with rich, for an 80-column terminal as well as a wide one.

Wide tables turn into stacked rows below `WIDE` columns, so nothing a reviewer needs (ids,
excerpts) is squeezed into a one-character column. Colour only ever repeats what the text
says, so `NO_COLOR` and exported files lose nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from tracewatch.monitor.reports.models import (
    AccountReport,
    CaseReport,
    EvidenceRow,
    InteractionReport,
    OverviewReport,
    Timeline,
    WindowRow,
)

WIDE = 110
SPARKS = " ▁▂▃▄▅▆▇█"
SEVERITY_STYLE = {"low": "green", "medium": "yellow", "high": "red", "critical": "bold red"}
STATUS_STYLE = {"open": "bold", "in_review": "cyan", "actioned": "magenta", "dismissed": "dim"}
DAYS_SHOWN = 31


class Responsive:
    """One renderable for narrow terminals and another for wide ones, chosen at draw time."""

    def __init__(self, narrow: RenderableType, wide: RenderableType, at: int = WIDE) -> None:
        self.narrow, self.wide, self.at = narrow, wide, at

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.wide if options.max_width >= self.at else self.narrow


def _t(text: str, style: str = "") -> Text:
    return Text(text, style=style)


def _when(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return f"{dt:{fmt}}" if dt else "-"


def _span(start: datetime, end: datetime) -> str:
    last = end - timedelta(seconds=1)
    if last.date() == start.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
    return f"{start:%Y-%m-%d}..{last:%Y-%m-%d} UTC"


def _section(title: str) -> Rule:
    return Rule(Text(title, style="bold"), align="left", style="dim")


def _grid(rows: Iterable[tuple[str, str | Text]]) -> Table:
    g = Table.grid(padding=(0, 2))
    g.add_column(style="dim", no_wrap=True)
    g.add_column(overflow="fold")
    for k, v in rows:
        g.add_row(k, v if isinstance(v, Text) else Text(v))
    return g


def _table(*columns: str, title: str | None = None) -> Table:
    t = Table(
        box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False, show_edge=False
    )
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def _accounts(accounts: Sequence[str], shown: int = 12) -> str:
    more = len(accounts) - shown
    return ", ".join(accounts[:shown]) + (f" and {more} more" if more > 0 else "")


def timeline_view(tl: Timeline | None) -> RenderableType:
    """One row per UTC day: a 24-character sparkline of interactions per hour, and the total."""
    if tl is None or tl.total == 0:
        return Text("no activity in this window", style="dim")
    by_hour = {h.hour: h.n for h in tl.hours}
    top = max(tl.busiest_hour, 1)
    day = tl.start.replace(hour=0, minute=0, second=0, microsecond=0)
    days: list[datetime] = []
    while day < tl.end:
        days.append(day)
        day += timedelta(days=1)
    active = [d for d in days if any(d <= h < d + timedelta(days=1) for h in by_hour)]
    hidden = len(days) > DAYS_SHOWN and len(active) > DAYS_SHOWN
    if len(days) > DAYS_SHOWN:
        days = active[-DAYS_SHOWN:]
    t = Table.grid(padding=(0, 1))
    t.add_column(no_wrap=True, style="dim")
    t.add_column(no_wrap=True)
    t.add_column(no_wrap=True, justify="right")
    t.add_row("UTC hour", Text("0     6     12    18    ", style="dim"), "")
    for d in days:
        counts = [by_hour.get(d + timedelta(hours=h), 0) for h in range(24)]
        line = "".join(
            "·" if n == 0 else SPARKS[max(1, round(n / top * (len(SPARKS) - 1)))] for n in counts
        )
        t.add_row(f"{d:%a %m-%d}", Text(line, style="cyan"), str(sum(counts)))
    note = f"{tl.total} interaction(s); busiest hour {tl.busiest_hour}; · is none, █ is {top}"
    if hidden:
        note += f"; last {DAYS_SHOWN} active days shown"
    return Group(t, Text(note, style="dim"))


# -- case --------------------------------------------------------------------------------------


def _evidence_view(rows: Sequence[EvidenceRow]) -> RenderableType:
    if not rows:
        return Text("the verdict cites no interactions", style="dim")
    wide = _table("interaction", "time (UTC)", "account", "site / target", "excerpt (redacted)")
    wide.columns[0].no_wrap = True
    wide.columns[1].no_wrap = True
    wide.columns[4].ratio = 3
    narrow = Table.grid(padding=(0, 0))
    narrow.add_column(overflow="fold")
    for r in rows:
        quote = "“" if r.quoted else ""
        excerpt = f"{quote}{r.excerpt}{'”' if r.quoted else ''}"
        wide.add_row(
            r.interaction_id, _when(r.at, "%m-%d %H:%M"), r.account or "-", r.site or "-", excerpt
        )
        head = Text.assemble(
            (r.interaction_id, "bold"),
            f"  {_when(r.at, '%m-%d %H:%M')}  {r.account or '-'}  ",
            (r.site or "-", "cyan"),
        )
        narrow.add_row(head)
        narrow.add_row(Padding(Text(excerpt), (0, 0, 0, 4)))
    return Responsive(narrow, wide)


def case_view(r: CaseReport) -> RenderableType:
    sev = SEVERITY_STYLE.get(r.severity, "")
    cal = "" if r.calibrated is None else (" calibrated" if r.calibrated else " rubric default")
    score = Text.assemble(
        (f"{r.score:.2f}", "bold"),
        f" (threshold {r.threshold:.2f}{cal}; confidence {r.confidence:.2f})",
    )
    head = [
        ("rubric", Text.assemble((r.rubric, "bold"), f" v{r.rubric_version}")),
        ("severity", Text(r.severity, style=sev)),
        ("score", score),
        ("priority", f"{r.priority:.1f}"),
        ("judge", f"{r.judge} ({r.model})"),
        ("subject", f"{r.subject_type} {r.subject}"),
        ("accounts", _accounts(r.accounts)),
        ("window", f"{_span(r.window_start, r.window_end)} (from {r.window} windows)"),
        ("status", Text(r.status, style=STATUS_STYLE.get(r.status, ""))),
    ]
    if r.reviewer:
        head.append(("reviewer", r.reviewer))
    if r.action:
        head.append(("action", r.action + (f" ({r.note})" if r.note else "")))
    parts: list[RenderableType] = [
        Rule(Text(f"case {r.case_id}", style="bold"), align="left"),
        _grid(head),
        _section("why"),
        Text(r.rationale),
        _section(f"summary of {r.interactions} interaction(s), {r.summary_levels} level(s)"),
        Text(r.summary or "(the aggregate behind this case is gone; rerun tracewatch run)"),
        _section(f"evidence ({len(r.evidence)} cited)"),
        _evidence_view(r.evidence),
        _section("activity per hour"),
        timeline_view(r.timeline),
    ]
    if r.duplicate_groups:
        t = _table("copies", "sites", "accts", "text (redacted)")
        for c in t.columns[:3]:
            c.justify = "right"
        for g in r.duplicate_groups:
            t.add_row(str(g.copies), str(g.sites), str(g.accounts), g.text)
        parts += [_section("near-duplicate content"), t]
    if r.members:
        m = _table("account", "inter.", "named", "tied by")
        for row in r.members:
            ties = ", ".join(f"{k} x{n}" for k, n in row.ties.items()) or "-"
            m.add_row(row.account, str(row.interactions), "yes" if row.named else "no", ties)
        parts += [_section(f"members ({len(r.members)})"), m]
        if r.links:
            lk = _table("tie", "accts", "what they share (redacted)")
            for link in r.links[:12]:
                lk.add_row(link.kind, str(len(link.accounts)), link.key)
            parts += [lk]
    if r.audit:
        a = _table("time (UTC)", "who", "event", "note")
        a.columns[0].no_wrap = True
        for e in r.audit:
            move = f" {e.from_status or ''}->{e.to_status}" if e.to_status else ""
            a.add_row(_when(e.at), e.actor, e.event + move, e.note or "")
        parts += [_section("audit trail"), a]
    parts.append(
        Text(
            f"next: tracewatch report interaction ID | tracewatch queue claim {r.case_id} "
            "--reviewer NAME",
            style="dim",
        )
    )
    return Group(*parts)


# -- interaction -------------------------------------------------------------------------------


def interaction_view(r: InteractionReport) -> RenderableType:
    head = [
        ("account", r.account),
        ("format", r.source_format + (f"  agent {r.agent}" if r.agent else "")),
        ("model", r.model or "-"),
        (
            "time",
            f"{_when(r.started_at, '%Y-%m-%d %H:%M:%S')} .. {_when(r.ended_at, '%H:%M:%S')} UTC",
        ),
        ("domains", ", ".join(r.domains) or "-"),
        ("content", r.content_hash[:16]),
        ("source", r.source or "-"),
        ("cases", ", ".join(r.cases) or "none"),
    ]
    steps = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    steps.add_column("#", justify="right", no_wrap=True)
    steps.add_column("step", overflow="fold", ratio=1)
    steps.add_column("detail (redacted)", overflow="fold", ratio=3)
    for s in r.steps:
        what = Text.assemble((s.actor, "bold"), f" {s.kind}")
        if s.what:
            what.append(f"\n{s.what}", style="cyan")
        if s.at:
            what.append(f"\n{s.at:%H:%M:%S}", style="dim")
        detail = Text()
        if s.target:
            detail.append(s.target, style="cyan")
        if s.detail:
            detail.append(("\n" if detail else "") + s.detail)
        if s.result:
            detail.append(("\n" if detail else "") + "-> " + s.result, style="dim")
        for a in s.attachments:
            detail.append(("\n" if detail else "") + f"[{a}]", style="dim")
        if s.is_error:
            detail.append(("\n" if detail else "") + "ERROR", style="bold red")
        steps.add_row(str(s.index), what, detail)
    return Group(
        Rule(Text(f"interaction {r.interaction_id}", style="bold"), align="left"),
        _grid(head),
        _section(f"summary ({r.summary_backend})" if r.summary_backend else "summary"),
        Text(
            r.summary or "not summarized yet; run tracewatch summarize",
            style="" if r.summary else "dim",
        ),
        _section(f"{len(r.steps)} step(s)"),
        steps,
    )


# -- overview ----------------------------------------------------------------------------------


def _bar(n: int, top: int, width: int = 20) -> str:
    return "█" * max(1 if n else 0, round(n / max(top, 1) * width))


def overview_view(r: OverviewReport) -> RenderableType:
    p = r.processing
    since = f" since {r.since:%Y-%m-%d %H:%M} UTC" if r.since else ""
    parts: list[RenderableType] = [
        Rule(Text(f"tracewatch overview{since}", style="bold"), align="left"),
        _grid(
            [
                (
                    "interactions",
                    f"{p.interactions:,} from {p.accounts:,} account(s), "
                    f"{_when(p.first_at, '%Y-%m-%d')}..{_when(p.last_at, '%Y-%m-%d')}",
                ),
                (
                    "quarantined",
                    f"{p.quarantined:,}"
                    + (" (tracewatch quarantine list)" if p.quarantined else ""),
                ),
            ]
        ),
        _section("queue depth"),
    ]
    if r.queue:
        labels = {"in_review": "review"}
        q = _table("rubric", *(labels.get(s, s) for s in r.statuses), "total")
        for c in q.columns[1:]:
            c.justify = "right"
        totals = [0] * (len(r.statuses) + 1)
        for row in r.queue:
            vals = [row.by_status.get(s, 0) for s in r.statuses] + [row.total]
            totals = [a + b for a, b in zip(totals, vals, strict=True)]
            q.add_row(row.rubric, *(str(v) if v else "·" for v in vals))
        q.add_row(Text("all", style="bold"), *(Text(str(v), style="bold") for v in totals))
        parts.append(q)
    else:
        parts.append(
            Text("no cases yet: run tracewatch judge (tracewatch run ends with it)", style="dim")
        )
    if r.days:
        d = _table("day (UTC)", "opened", "closed", "")
        d.columns[1].justify = d.columns[2].justify = "right"
        top = max(max(x.opened, x.closed) for x in r.days)
        for x in r.days[-14:]:
            d.add_row(x.day, str(x.opened), str(x.closed), Text(_bar(x.opened, top), style="cyan"))
        parts += [_section("cases opened and closed per day"), d]
    if r.top_campaigns:
        c = _table("case", "campaign", "accts", "rubric", "score", "prio")
        c.columns[0].no_wrap = True
        for x in r.top_campaigns:
            c.add_row(
                x.case_id,
                x.subject,
                str(x.accounts),
                x.rubric,
                f"{x.score:.2f}",
                f"{x.priority:.1f}",
            )
        parts += [_section("top campaigns (open)"), c]
    if r.top_accounts:
        a = _table("account", "cases", "priority", "rubrics")
        for x in r.top_accounts:
            a.add_row(x.account, str(x.cases), f"{x.priority:.1f}", ", ".join(x.rubrics))
        parts += [_section("top accounts (open cases)"), a]
    parts.append(_section("reviewer decisions"))
    if r.decisions:
        dec = _table("reviewer", "decisions", "total", "median h")
        for x in r.decisions:
            dec.add_row(
                x.reviewer,
                ", ".join(f"{k} {v}" for k, v in x.decisions.items()),
                str(x.total),
                f"{x.median_hours_to_close}",
            )
        parts.append(dec)
    else:
        parts.append(Text("none yet (tracewatch queue claim / resolve / dismiss)", style="dim"))
    if r.rubric_precision:
        prec = _table("rubric", "actioned", "dismissed", "precision")
        for x in r.rubric_precision:
            prec.add_row(
                x.rubric,
                str(x.actioned),
                str(x.dismissed),
                "-" if x.precision is None else f"{x.precision:.2f}",
            )
        parts += [
            _section("precision by rubric (reviewer decisions)"),
            prec,
            Text("thresholds from them: tracewatch calibrate --from-decisions", style="dim"),
        ]
    caught = sum(r.secrets_caught.values())
    parts.append(
        Text(
            "last guard: "
            + (
                f"{caught} secret value(s) redacted before a write ("
                + ", ".join(f"{k} {v}" for k, v in r.secrets_caught.items())
                + ")"
                if caught
                else "no secret value reached a write"
            ),
            style="yellow" if caught else "dim",
        )
    )
    parts.append(_section("processing"))
    if p.backends:
        b = _table("stage", "backend", "model", "count", "tok in", "tok out", "fail")
        for c in b.columns[3:]:
            c.justify = "right"
        for x in p.backends:
            b.add_row(
                x.stage,
                x.backend,
                x.model,
                f"{x.count:,}",
                f"{x.tokens_in:,}",
                f"{x.tokens_out:,}",
                str(x.failures) if x.failures else "·",
            )
        parts.append(b)
    else:
        parts.append(Text("nothing summarized yet: tracewatch summarize", style="dim"))
    return Group(*parts)


# -- account -----------------------------------------------------------------------------------


def _windows_table(rows: Sequence[WindowRow], label: str) -> Table:
    t = _table("window (UTC)", label, "inter.", "sites", "posts", "flagged / top scores")
    for c in t.columns[2:5]:
        c.justify = "right"
    for w in rows:
        last = w.window_end - timedelta(seconds=1)
        span = (
            f"{w.window_start:%m-%d %H:%M}"
            if w.window in ("1h", "6h")
            else f"{w.window_start:%m-%d}"
            + ("" if last.date() == w.window_start.date() else f"..{last:%m-%d}")
        )
        kind = {"account_window": w.window, "account_period": "period"}.get(w.kind, w.window)
        scores = Text()
        for rubric in w.flagged:
            scores.append(f"{rubric} ", style="bold red")
        rest = [f"{k} {v:.2f}" for k, v in w.verdicts.items() if k not in w.flagged]
        scores.append(", ".join(rest), style="dim")
        t.add_row(span, kind, str(w.interactions), str(w.domains), str(w.posts), scores)
    return t


def account_view(r: AccountReport) -> RenderableType:
    parts: list[RenderableType] = [
        Rule(Text(f"account {r.account}", style="bold"), align="left"),
        _grid(
            [
                (
                    "interactions",
                    f"{r.interactions:,}, {_when(r.first_at)} .. {_when(r.last_at)} UTC",
                ),
                ("formats", ", ".join(f"{k} {v}" for k, v in r.formats.items())),
                ("top sites", ", ".join(f"{k} {v}" for k, v in r.top_domains.items()) or "-"),
            ]
        ),
        _section("activity per hour"),
        timeline_view(r.timeline),
    ]
    if r.cases:
        c = _table("case", "status", "rubric", "score", "subject")
        c.columns[0].no_wrap = True
        for x in r.cases:
            c.add_row(
                x.case_id,
                Text(x.status, style=STATUS_STYLE.get(x.status, "")),
                x.rubric,
                f"{x.score:.2f}",
                x.subject,
            )
        parts += [_section(f"cases ({len(r.cases)})"), c]
    parts.append(_section(f"windows and periods ({len(r.windows)})"))
    parts.append(
        _windows_table(r.windows, "size")
        if r.windows
        else Text("not rolled up yet: tracewatch rollup", style="dim")
    )
    if r.campaigns:
        parts += [
            _section(f"campaigns including it ({len(r.campaigns)})"),
            _windows_table(r.campaigns, "size"),
        ]
    return Group(*parts)


def guidance(message: str) -> Text:
    return Text(message)
