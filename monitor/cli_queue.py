"""`tracewatch judge` and `tracewatch queue ...`: verdicts in, reviewer decisions out."""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from tracewatch.monitor.cli_common import (
    DbOption,
    JsonOption,
    ModelOption,
    ServerOption,
    SummarizerOption,
    VllmUrlOption,
    _backend,
    _fail,
    _only_one,
    _open,
    _print_json,
    _remote,
    err,
    out,
    run_stage,
)
from tracewatch.monitor.judge import JudgeReport
from tracewatch.monitor.queue import ACTIONS, STATUSES, Case, CaseEvent, Queue, QueueError
from tracewatch.monitor.reports.render import STATUS_STYLE, Responsive

queue_app = typer.Typer(
    help="The enforcement queue: cases opened by the judges, worked by reviewers. "
    "States: open -> in_review (claim) -> actioned | dismissed (resolve / dismiss); every "
    "change is kept in an append-only audit trail.",
    no_args_is_help=True,
)

RubricDirOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rubrics",
        help="A folder of extra rubric files (*.yaml); repeatable. A file with a built-in "
        "rubric's id replaces it.",
    ),
]
JudgeOption = Annotated[
    str,
    typer.Option(
        "--judge",
        help="signals: the rubric's deterministic signals (no model); llm: the summarizer "
        "backend's model (vllm or anthropic) on every aggregate; cascade: signals screen every "
        "aggregate, the model judges those at or above half the threshold and "
        "single-interaction rubrics with risk cues.",
    ),
]


def judge_table(r: JudgeReport) -> Table:
    t = Table(title=f"judge {r.judge} ({r.model})", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("count", justify="right")
    rows = [
        ("rubrics (calibrated)", f"{r.rubrics} ({r.calibrated_rubrics})"),
        ("aggregates", r.aggregates),
        ("verdicts written", r.judged),
        ("  unchanged, kept", r.unchanged),
        ("  failed", r.failed),
        ("flagged", f"[bold]{r.flagged}[/]"),
        ("cases opened", f"[green]{r.queue.opened}[/]"),
        ("cases updated", r.queue.updated),
        ("seconds", r.seconds),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    for rubric, n in r.flagged_by_rubric.items():
        t.add_row(f"  {rubric}", str(n))
    return t


def judge_cmd(
    rubrics: RubricDirOption = None,
    rubric: Annotated[
        list[str] | None, typer.Option("--rubric", help="Only this rubric id; repeatable.")
    ] = None,
    judge: JudgeOption = "signals",
    summarizer: SummarizerOption = "embedded",
    model: ModelOption = None,
    vllm_url: VllmUrlOption = "http://127.0.0.1:8000/v1",
    concurrency: Annotated[int, typer.Option(min=1, help="Judgements in flight at once.")] = 8,
    rejudge: Annotated[
        bool, typer.Option(help="Judge again even where input, rubric and threshold are unchanged.")
    ] = False,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Judge the rolled-up aggregates against the rubrics; flagged ones open cases in the queue.

    Incremental: an aggregate whose input, rubric version, threshold and judge are unchanged
    keeps its verdict. Re-running never opens a second case for the same thing.
    """
    from tracewatch.monitor.judge import JudgeOptions, run_judge
    from tracewatch.rubrics.loader import RubricError
    from tracewatch.rubrics.registry import create_judge

    store = _open(db)
    try:
        backend = _backend(store.path, summarizer, model, vllm_url)
        try:
            j = create_judge(judge, backend)
            opts = JudgeOptions(
                rubric_dirs=rubrics or [],
                rubrics=rubric or [],
                backend=backend.name,
                model=backend.model,
                concurrency=concurrency,
                rejudge=rejudge,
            )
            with (
                err.status("judging", spinner="dots")
                if err.is_terminal and not json
                else nullcontext()
            ):
                report = run_stage(backend, run_judge(store, j, opts))
        except (RubricError, ValueError) as exc:
            raise _fail(str(exc)) from None
        finally:
            asyncio.run(backend.aclose())
    finally:
        store.close()
    if json:
        _print_json(report.model_dump())
        return
    out.print(judge_table(report))
    if report.failures:
        err.print("[yellow]failed judgements:[/]\n  " + "\n  ".join(report.failures))
    if report.queue.opened:
        out.print("[dim]work the queue with[/] tracewatch queue list")


def _case_json(c: Case) -> dict[str, object]:
    return {
        "case_id": c.case_id,
        "subject_type": c.subject_type,
        "subject": c.subject,
        "accounts": c.accounts,
        "rubric": c.rubric,
        "rubric_version": c.rubric_version,
        "severity": c.severity,
        "score": c.score,
        "confidence": c.confidence,
        "priority": c.priority,
        "status": c.status,
        "window": c.window,
        "window_start": c.window_start.isoformat(),
        "window_end": c.window_end.isoformat(),
        "evidence": c.evidence,
        "judge": c.judge,
        "model": c.model,
        "threshold": c.threshold,
        "reviewer": c.reviewer,
        "action": c.action,
        "note": c.note,
        "opened_at": c.opened_at.isoformat(),
        "updated_at": c.updated_at.isoformat(),
    }


def _cases_view(cases: list[Case]) -> Responsive:
    """A table when there is room; below that, two lines per case so no column is squeezed."""
    wide = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col in ("case", "status", "rubric", "severity", "score", "prio", "subject", "window"):
        wide.add_column(col, overflow="fold", no_wrap=col in ("case", "score", "prio"))
    narrow = Table.grid(padding=(0, 0))
    narrow.add_column(overflow="fold")
    for c in cases:
        subject = c.subject if c.subject_type == "account" else f"{c.subject} ({len(c.accounts)})"
        window = f"{c.window_start:%Y-%m-%d}..{c.window_end - timedelta(seconds=1):%m-%d}"
        status = Text(c.status, style=STATUS_STYLE.get(c.status, ""))
        wide.add_row(
            c.case_id,
            status,
            c.rubric,
            c.severity,
            f"{c.score:.2f}",
            f"{c.priority:.1f}",
            subject,
            window,
        )
        narrow.add_row(
            Text.assemble(
                (c.case_id, "bold"),
                "  ",
                status,
                f"  {c.rubric}  {c.severity}  score ",
                (f"{c.score:.2f}", "bold"),
                f"  prio {c.priority:.1f}",
            )
        )
        narrow.add_row(Text(f"    {subject}  {window}", style="dim"))
    return Responsive(narrow, wide)


@queue_app.command("list")
def queue_list(
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help=f"Only these states ({', '.join(STATUSES)}); repeatable."),
    ] = None,
    rubric: Annotated[list[str] | None, typer.Option("--rubric", help="Only this rubric.")] = None,
    account: Annotated[str | None, typer.Option("--account", "-a", help="Cases naming it.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
) -> None:
    """Cases by priority (severity x score x reach), highest first."""
    _only_one(db, server)
    if server:
        got = _remote(
            server, "GET", "/v1/cases", status=status, rubric=rubric, account=account, limit=limit
        )
        cases = [Case.model_validate(c) for c in got["cases"]]
    else:
        store = _open(db, read_only=True)
        try:
            cases = Queue(store).list(status or [], rubric or [], account, limit)
        except QueueError as exc:
            raise _fail(str(exc)) from None
        finally:
            store.close()
    if json:
        _print_json([_case_json(c) for c in cases])
        return
    if not cases:
        out.print("no cases; run [bold]tracewatch judge[/] (or tracewatch run) first")
        return
    out.print(f"{len(cases)} case(s), highest priority first")
    out.print(_cases_view(cases))


@queue_app.command("show")
def queue_show(
    case_id: Annotated[str, typer.Argument(help="A case id from `queue list`.")],
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
) -> None:
    """One case: the verdict, its evidence, and its audit trail."""
    _only_one(db, server)
    if server:
        got = _remote(server, "GET", f"/v1/cases/{case_id}")
        c = Case.model_validate(got["case"])
        events = [CaseEvent.model_validate(e) for e in got["events"]]
    else:
        store = _open(db, read_only=True)
        try:
            q = Queue(store)
            c = q.get(case_id)
            events = q.events(case_id)
        except QueueError as exc:
            raise _fail(str(exc)) from None
        finally:
            store.close()
    if json:
        _print_json(
            {
                **_case_json(c),
                "rationale": c.rationale,
                "quotes": c.quotes,
                "signals": c.signals,
                "events": [e.model_dump(mode="json") for e in events],
            }
        )
        return
    out.print(
        f"[bold]{c.case_id}[/] {c.status}  {c.rubric} v{c.rubric_version}  severity "
        f"{c.severity}  score {c.score:.2f} (threshold {c.threshold:.2f}, {c.judge} {c.model})",
        highlight=False,
    )
    out.print(
        f"{c.subject_type} {c.subject}  accounts: {', '.join(c.accounts)}  window "
        f"{c.window_start:%Y-%m-%d %H:%M}..{c.window_end:%Y-%m-%d %H:%M} UTC",
        highlight=False,
    )
    out.print(c.rationale, highlight=False, soft_wrap=True)
    out.print(f"evidence: {', '.join(c.evidence) or '-'}", highlight=False)
    for q in c.quotes:
        out.print(f'  [{q["interaction_id"]}] "{q["text"]}"', highlight=False, markup=False)
    out.print("[bold]audit[/]")
    for e in events:
        arrow = f"{e.from_status or '-'} -> {e.to_status}" if e.to_status else ""
        out.print(
            f"  {e.at:%Y-%m-%d %H:%M:%S} {e.actor}: {e.event} {arrow} {e.note or ''}",
            highlight=False,
            markup=False,
        )


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Act on a case another reviewer has claimed (needs --note; recorded as a takeover).",
    ),
]


def _change(
    fn_name: str,
    case_id: str,
    db: str | None,
    server: str | None,
    json: bool,
    **kw: str | bool | None,
) -> None:
    """A transition, here or on the server (where the key, not --reviewer, names the reviewer:
    a --reviewer that differs from the key's name is refused)."""
    _only_one(db, server)
    if server:
        c = Case.model_validate(
            _remote(server, "POST", f"/v1/cases/{case_id}/{fn_name}", **kw)["case"]
        )
    else:
        store = _open(db)
        try:
            q = Queue(store)
            try:
                c = getattr(q, fn_name)(case_id, **kw)
            except QueueError as exc:
                raise _fail(str(exc)) from None
        finally:
            store.close()
    if json:
        _print_json(_case_json(c))
        return
    out.print(f"{c.case_id} is now [bold]{c.status}[/]" + (f" ({c.action})" if c.action else ""))


@queue_app.command("claim")
def queue_claim(
    case_id: Annotated[str, typer.Argument(help="An open case.")],
    reviewer: Annotated[
        str | None,
        typer.Option(
            "--reviewer", "-r", help="Who takes it (required; with --server, your key's name)."
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="Optional note for the audit trail.")] = None,
    force: ForceOption = False,
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
) -> None:
    """Take an open case for review (open -> in_review); --force takes over another's."""
    if not reviewer and not server:
        raise _fail("a reviewer name is required (--reviewer NAME)")
    _change("claim", case_id, db, server, json, reviewer=reviewer, note=note, force=force)


@queue_app.command("resolve")
def queue_resolve(
    case_id: Annotated[str, typer.Argument(help="A case in review.")],
    action: Annotated[str, typer.Option(help=f"One of {', '.join(ACTIONS)}; none dismisses.")],
    note: Annotated[str, typer.Option(help="Why; kept in the audit trail.")],
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", "-r", help="Default: who claimed it.")
    ] = None,
    force: ForceOption = False,
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
) -> None:
    """Close a case with an action (in_review -> actioned, or dismissed for --action none).

    Only the reviewer who claimed it closes it, unless --force (recorded as a takeover)."""
    _change(
        "resolve", case_id, db, server, json,
        action=action, note=note, reviewer=reviewer, force=force,
    )  # fmt: skip


@queue_app.command("dismiss")
def queue_dismiss(
    case_id: Annotated[str, typer.Argument(help="A case in review.")],
    note: Annotated[str, typer.Option(help="Why it is not a harm; kept in the audit trail.")],
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", "-r", help="Default: who claimed it.")
    ] = None,
    force: ForceOption = False,
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
) -> None:
    """Close a case as not harmful (in_review -> dismissed).

    Only the reviewer who claimed it closes it, unless --force (recorded as a takeover)."""
    _change("dismiss", case_id, db, server, json, note=note, reviewer=reviewer, force=force)


@queue_app.command("export")
def queue_export(
    db: DbOption = None,
    server: ServerOption = None,
    json: Annotated[bool, typer.Option("--json", help="JSON (the only format).")] = True,
) -> None:
    """Every case with its full audit trail, as one JSON array on stdout."""
    _only_one(db, server)
    if server:
        _print_json(_remote(server, "GET", "/v1/cases/export")["cases"])
        return
    store = _open(db, read_only=True)
    try:
        _print_json(Queue(store).export())
    finally:
        store.close()
