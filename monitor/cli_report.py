"""`tracewatch report ...`: the reviewer's views, a thin layer over `monitor.reports`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType

from tracewatch.monitor.cli_common import (
    DbOption,
    JsonOption,
    ServerOption,
    _fail,
    _only_one,
    _open,
    _print_json,
    _remote,
    out,
)
from tracewatch.monitor.reports import build, models, render
from tracewatch.monitor.store import Store, default_db_path, is_database_file
from tracewatch.monitor.terminal import safe_console

report_app = typer.Typer(
    help="Reports for reviewers: a case with its evidence, one interaction step by step, the "
    "queue overview, one account. Each also as --json, and as --html / --svg files to attach "
    "to a ticket. Everything shown from a trace is redacted.",
    no_args_is_help=True,
)

HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Also write the report as an HTML file.")
]
SvgOption = Annotated[
    Path | None, typer.Option("--svg", help="Also write the report as an SVG image.")
]
WidthOption = Annotated[
    int | None,
    typer.Option(
        "--width", min=60, help="Draw at this many columns (default: the terminal's width)."
    ),
]


class Remote(NamedTuple):
    """Where the same report comes from on a running server, and the model it arrives as."""

    path: str
    params: dict[str, Any]
    model: type[BaseModel]


class Where(NamedTuple):
    """The options every report shares: where it comes from and where it goes."""

    db: str | None
    server: str | None
    json: bool
    html: Path | None
    svg: Path | None
    width: int | None


def _emit(
    make: Callable[[Store], BaseModel],
    remote: Remote,
    view: Callable[[Any], RenderableType],
    title: str,
    where: Where,
) -> None:
    """Build the report (or fetch it from --server), then print it (or its JSON) and write
    the requested files.

    An empty database is not an error: the guidance says what to run first, exit 0.
    """
    store_db, server, json, html, svg, width = where
    for target in (html, svg):
        if target is not None:
            refusal = export_refusal(target, store_db)
            if refusal:
                raise _fail(refusal)
    _only_one(store_db, server)
    if server:
        got = _remote(server, "GET", remote.path, **remote.params)
        if got.get("empty"):
            _guidance(got["guidance"], json)
            return
        report = remote.model.model_validate(got["report"])
    else:
        store = _open(store_db, read_only=True)
        try:
            report = make(store)
        except build.ReportEmpty as exc:
            _guidance(str(exc), json)
            return
        except (build.ReportError, ValueError) as exc:
            raise _fail(str(exc)) from None
        finally:
            store.close()
    if json:
        _print_json(report.model_dump(mode="json"))
        return
    recording = html is not None or svg is not None
    console = safe_console(Console(record=recording, width=width)) if recording or width else out
    console.print(view(report))
    if html is not None:
        console.save_html(str(html), clear=False)
    if svg is not None:
        console.save_svg(str(svg), title=title, clear=False)
    for target in (html, svg):
        if target is not None:
            out.print(f"[dim]wrote {target}[/]", highlight=False)


def export_refusal(target: Path, db: str | None) -> str | None:
    """Why a report must not be written to `target`, or None. An export never replaces the
    database, its key, WAL or checkpoints, any other DuckDB file, or a directory."""
    if not target.parent.exists():
        return f"{target}: folder {target.parent} does not exist"
    if target.is_dir():
        return f"{target}: is a directory; name a file to write the report to"
    if is_database_file(target):
        return f"{target}: is a DuckDB database; refusing to overwrite it with a report"
    db_path = Path(db or default_db_path())
    guarded = [db_path, *(Path(f"{db_path}{s}") for s in (".key", ".wal", ".rollup.sqlite"))]
    if target.exists() and any(target.resolve() == g.resolve() for g in guarded if g.exists()):
        return f"{target}: is the database's own file; refusing to overwrite it with a report"
    if any(target.resolve() == g.resolve() for g in guarded):
        return f"{target}: is where the database keeps its own file; name another path"
    return None


def _guidance(text: str, json: bool) -> None:
    if json:
        _print_json({"empty": True, "guidance": text})
    else:
        out.print(render.guidance(text))


@report_app.command("case")
def report_case(
    case_id: Annotated[
        str | None,
        typer.Argument(help="A case id from `tracewatch queue list` (a unique prefix will do)."),
    ] = None,
    top: Annotated[
        bool, typer.Option("--top", help="The open case of highest priority: the next to review.")
    ] = False,
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
    html: HtmlOption = None,
    svg: SvgOption = None,
    width: WidthOption = None,
) -> None:
    """One case: the verdict (rubric, score, severity, judge, model), the aggregate's summary,
    the cited evidence with redacted excerpts, activity per hour, near-duplicate content, and
    for a campaign the member accounts and what ties them; then the audit trail."""
    if case_id and top:
        raise _fail("give a case id or --top, not both")

    def make(store: Store) -> BaseModel:
        return build.build_case(store, case_id, top)

    remote = Remote("/v1/reports/case", {"case_id": case_id, "top": top}, models.CaseReport)
    where = Where(db, server, json, html, svg, width)
    _emit(make, remote, render.case_view, "tracewatch case report", where)


@report_app.command("interaction")
def report_interaction(
    interaction_id: Annotated[
        str, typer.Argument(help="An interaction id (from a case's evidence).")
    ],
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
    html: HtmlOption = None,
    svg: SvgOption = None,
    width: WidthOption = None,
) -> None:
    """One interaction step by step: every action, its target, what was typed or said and the
    result, redacted with the deployment's key; images and files as type, size and hash."""

    def make(store: Store) -> BaseModel:
        return build.build_interaction(store, interaction_id)

    remote = Remote(
        "/v1/reports/interaction", {"interaction_id": interaction_id}, models.InteractionReport
    )
    where = Where(db, server, json, html, svg, width)
    _emit(make, remote, render.interaction_view, "tracewatch interaction", where)


@report_app.command("overview")
def report_overview(
    since: Annotated[
        str | None,
        typer.Option(
            help="Only count cases opened/closed, decisions and processing from this time "
            "(2026-10-05, an ISO timestamp, or 7d ago). Queue depth and the top lists are "
            "always the current state."
        ),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many top accounts and campaigns.")] = 10,
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
    html: HtmlOption = None,
    svg: SvgOption = None,
    width: WidthOption = None,
) -> None:
    """The queue at a glance: depth by rubric and status, cases opened and closed per day, top
    campaigns and accounts by priority, reviewers' decisions, and what processing cost
    (interactions, summaries, rollups and verdicts with tokens per backend)."""
    from tracewatch.monitor.windows import WindowError, parse_when

    try:
        when = parse_when(since) if since else None
    except WindowError as exc:
        raise _fail(str(exc)) from None

    def make(store: Store) -> BaseModel:
        return build.build_overview(store, when, top)

    remote = Remote("/v1/reports/overview", {"since": since, "top": top}, models.OverviewReport)
    where = Where(db, server, json, html, svg, width)
    _emit(make, remote, render.overview_view, "tracewatch overview", where)


@report_app.command("account")
def report_account(
    account: Annotated[str, typer.Argument(help="An account id (see `tracewatch stats`).")],
    db: DbOption = None,
    server: ServerOption = None,
    json: JsonOption = False,
    html: HtmlOption = None,
    svg: SvgOption = None,
    width: WidthOption = None,
) -> None:
    """One account: its activity per hour, every window and period with its scores, the
    campaigns it was linked into, and its cases."""

    def make(store: Store) -> BaseModel:
        return build.build_account(store, account)

    remote = Remote("/v1/reports/account", {"account": account}, models.AccountReport)
    title = f"tracewatch account {account}"
    where = Where(db, server, json, html, svg, width)
    _emit(make, remote, render.account_view, title, where)
