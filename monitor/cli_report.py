"""`tracewatch report ...`: the reviewer's views, a thin layer over `monitor.reports`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType

from tracewatch.monitor.cli_common import DbOption, JsonOption, _fail, _open, _print_json, out
from tracewatch.monitor.reports import build, render
from tracewatch.monitor.store import Store

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


def _emit(
    store_db: str | None,
    make: Callable[[Store], BaseModel],
    view: Callable[[Any], RenderableType],
    title: str,
    json: bool,
    html: Path | None,
    svg: Path | None,
    width: int | None,
) -> None:
    """Build the report, then print it (or its JSON) and write the requested files.

    An empty database is not an error: the guidance says what to run first, exit 0.
    """
    for target in (html, svg):
        if target is not None and not target.parent.exists():
            raise _fail(f"{target}: folder {target.parent} does not exist")
    store = _open(store_db, read_only=True)
    try:
        report = make(store)
    except build.ReportEmpty as exc:
        if json:
            _print_json({"empty": True, "guidance": str(exc)})
        else:
            out.print(render.guidance(str(exc)))
        return
    except (build.ReportError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    if json:
        _print_json(report.model_dump(mode="json"))
        return
    recording = html is not None or svg is not None
    console = Console(record=recording, width=width) if recording or width else out
    console.print(view(report))
    if html is not None:
        console.save_html(str(html), clear=False)
    if svg is not None:
        console.save_svg(str(svg), title=title, clear=False)
    for target in (html, svg):
        if target is not None:
            out.print(f"[dim]wrote {target}[/]", highlight=False)


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
        return build.build_case(store, build.resolve_case_id(store, case_id, top))

    _emit(db, make, render.case_view, "tracewatch case report", json, html, svg, width)


@report_app.command("interaction")
def report_interaction(
    interaction_id: Annotated[
        str, typer.Argument(help="An interaction id (from a case's evidence).")
    ],
    db: DbOption = None,
    json: JsonOption = False,
    html: HtmlOption = None,
    svg: SvgOption = None,
    width: WidthOption = None,
) -> None:
    """One interaction step by step: every action, its target, what was typed or said and the
    result, redacted with the deployment's key; images and files as type, size and hash."""
    from tracewatch.summarizers.redaction import Redactor, load_key

    def make(store: Store) -> BaseModel:
        return build.build_interaction(store, interaction_id, Redactor(load_key(store.path)))

    _emit(db, make, render.interaction_view, "tracewatch interaction", json, html, svg, width)


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

    _emit(db, make, render.overview_view, "tracewatch overview", json, html, svg, width)


@report_app.command("account")
def report_account(
    account: Annotated[str, typer.Argument(help="An account id (see `tracewatch stats`).")],
    db: DbOption = None,
    json: JsonOption = False,
    html: HtmlOption = None,
    svg: SvgOption = None,
    width: WidthOption = None,
) -> None:
    """One account: its activity per hour, every window and period with its scores, the
    campaigns it was linked into, and its cases."""

    def make(store: Store) -> BaseModel:
        return build.build_account(store, account)

    _emit(db, make, render.account_view, f"tracewatch account {account}", json, html, svg, width)
