"""The `tracewatch` command line: a thin layer over the library API.

Human output goes through rich (progress on stderr, tables on stdout); `--json` prints one
JSON document on stdout and nothing else, for scripts.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from tracewatch import __version__
from tracewatch.monitor.cli_common import (
    AccountsOption,
    BudgetOption,
    CampaignsOption,
    DbOption,
    EngineArgsOption,
    JsonOption,
    ModelOption,
    ShardOption,
    SinceOption,
    SummarizerOption,
    UntilOption,
    VllmUrlOption,
    WindowOption,
    _backend,
    _fail,
    _open,
    _print_json,
    engine_args,
    err,
    out,
    run_stage,
)
from tracewatch.monitor.cli_eval import calibrate_cmd, corpus_labelled_cmd, eval_cmd
from tracewatch.monitor.cli_queue import (
    JudgeOption,
    RubricDirOption,
    judge_cmd,
    judge_table,
    queue_app,
)
from tracewatch.monitor.cli_report import report_app
from tracewatch.monitor.cli_serve import serve_cmd
from tracewatch.monitor.ingest import TRACE_SUFFIXES, IngestOptions, PathError, ingest, input_size
from tracewatch.monitor.store import Store
from tracewatch.trace_adapters import DetectionError, all_adapters
from tracewatch.trace_adapters.registry import aliases as format_aliases

app = typer.Typer(
    name="tracewatch",
    help=(
        "Find harms in AI-agent traffic that no single interaction shows.\n\n"
        "Ingest trace dumps (Anthropic, OpenAI, OTel GenAI, browser-use, OpenHands, SWE-agent, "
        "Inspect AI, AgentDojo, MCP, Mind2Web) into a DuckDB file, then inspect what was stored. "
        "The database is ./tracewatch.duckdb unless --db or TRACEWATCH_DB says otherwise."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
quarantine_app = typer.Typer(
    help="Records that could not be read, kept with the reason.", no_args_is_help=True
)
corpus_app = typer.Typer(
    help="Generate synthetic trace corpora (seeded, deterministic).", no_args_is_help=True
)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(corpus_app, name="corpus")
app.add_typer(queue_app, name="queue")
app.add_typer(report_app, name="report")
app.command("serve")(serve_cmd)
app.command("judge")(judge_cmd)
app.command("eval")(eval_cmd)
app.command("calibrate")(calibrate_cmd)
corpus_app.command("labelled")(corpus_labelled_cmd)


def _version(value: bool) -> None:
    if value:
        out.print(f"tracewatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    pass


RereadOption = Annotated[
    bool,
    typer.Option(
        "--reread",
        help="Read every file whole again, even one whose bytes are as when it was last read "
        "(by default such a file is skipped, and a grown .jsonl is read from where it ended).",
    ),
]


@app.command("ingest")
def ingest_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files, folders (read recursively) or - for stdin.", show_default=False
        ),
    ],
    format: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="Trace format, if detection should be skipped (see `tracewatch formats`).",
        ),
    ] = None,
    account: Annotated[
        str | None,
        typer.Option(
            "--account", "-a", help="Account for bare traces that come without an envelope."
        ),
    ] = None,
    db: DbOption = None,
    json: JsonOption = False,
    batch_size: Annotated[int, typer.Option(help="Interactions per transaction.", min=1)] = 500,
    reread: RereadOption = False,
) -> None:
    """Read trace dumps into the store; every record is either stored or quarantined with a reason.

    A .jsonl/.jsonl.gz file holds one identity envelope per line:
    {"account_id", "interaction_id"?, "started_at"?, "ended_at"?, "format"?, "metadata"?, "trace"}.
    Any other file is one native trace (or a native file with several, like an Inspect log).
    Exit code 0 when everything was read or quarantined; 2 when a path or the database
    cannot be used.
    """
    opts = IngestOptions(format=format, account=account, batch_size=batch_size, reread=reread)
    try:
        total = input_size(paths)
    except PathError as exc:
        raise _fail(str(exc)) from None
    store = _open(db)
    try:
        show = not json and err.is_terminal
        progress = Progress(
            TextColumn("[bold]ingest[/]"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[file]}", style="dim"),
            console=err,
            disable=not show,
            transient=True,
        )
        with progress:
            task = progress.add_task("ingest", total=total, file="")
            report = ingest(
                paths,
                store,
                opts,
                on_bytes=lambda n: progress.advance(task, n),
                on_file=lambda f: progress.update(task, file=Path(f).name if f != "-" else "stdin"),
                processes=True,
            )
    except PathError as exc:
        raise _fail(str(exc)) from None
    except DetectionError as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    if json:
        _print_json({"db": store.path, **report.as_dict()})
        return
    table = Table(title=f"ingested into {store.path}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("files read", str(report.files - report.unchanged_files))
    if report.unchanged_files:
        table.add_row("files unchanged since last read (--reread)", str(report.unchanged_files))
    if report.resumed_files:
        table.add_row("files read from where they ended", str(report.resumed_files))
    table.add_row("records", str(report.records))
    table.add_row("interactions stored", f"[green]{report.inserted}[/]")
    table.add_row("duplicates skipped", str(report.duplicates))
    table.add_row("quarantined", f"[yellow]{report.quarantined}[/]" if report.quarantined else "0")
    for reason, n in report.quarantined_by_reason.most_common():
        table.add_row(f"  {reason}", str(n))
    for fmt, n in report.by_format.most_common():
        table.add_row(f"format {fmt}", str(n))
    out.print(table)
    for what, n in report.defaults_used.most_common():
        out.print(f"[dim]default used:[/] {what} ({n} interactions)")
    for what, n in report.format_hint_mismatches.most_common():
        out.print(
            f"[dim]format hint did not fit, detected instead:[/] {escape(what)} ({n} records)"
        )
    if report.skipped_files:
        shown = ", ".join(report.skipped_files[:3])
        more = f" and {len(report.skipped_files) - 3} more" if len(report.skipped_files) > 3 else ""
        out.print(
            f"[dim]skipped {len(report.skipped_files)} files in folders without a trace "
            f"extension ({', '.join(TRACE_SUFFIXES)}):[/] {shown}{more}"
        )
    if report.quarantined:
        out.print(
            "[dim]see them with[/] tracewatch quarantine list" + (f" --db {db}" if db else "")
        )


@app.command("stats")
def stats_cmd(
    db: DbOption = None,
    json: JsonOption = False,
    top: Annotated[int, typer.Option(help="Accounts to list.")] = 10,
) -> None:
    """Counts of what is stored: interactions by account, format and day, and the quarantine."""
    with _open(db, read_only=True) as store:
        data = store.stats(top_accounts=top)
    if json:
        _print_json(data)
        return
    head = Table(
        title=f"tracewatch store {data['db']} (schema v{data['schema_version']})",
        title_justify="left",
        show_header=False,
    )
    head.add_column("what")
    head.add_column("count", justify="right")
    for key in ("interactions", "steps", "accounts", "quarantined"):
        head.add_row(key, str(data[key]))
    out.print(head)
    if not data["interactions"]:
        out.print("The store is empty. Ingest traces with: tracewatch ingest PATH...")
        return
    fmt = Table("format", "interactions", title="by format", title_justify="left")
    for k, v in data["by_format"].items():
        fmt.add_row(k, str(v))
    out.print(fmt)
    acc = Table(
        "account",
        "interactions",
        "first",
        "last",
        title=f"top {top} accounts",
        title_justify="left",
    )
    for row in data["top_accounts"]:
        acc.add_row(
            row["account_id"], str(row["interactions"]), row["first"][:16], row["last"][:16]
        )
    out.print(acc)
    days = Table("day (UTC)", "interactions", title="by day", title_justify="left")
    for k, v in data["by_day"].items():
        days.add_row(k, str(v))
    out.print(days)


@quarantine_app.command("list")
def quarantine_list(
    db: DbOption = None,
    json: JsonOption = False,
    limit: Annotated[int | None, typer.Option(help="Show at most N.")] = None,
) -> None:
    """Every rejected record with its source file, line, the adapter tried and the error."""
    with _open(db, read_only=True) as store:
        rows = store.quarantine(limit=limit)
    if json:
        _print_json(rows)
        return
    if not rows:
        out.print("The quarantine is empty: every record read so far was stored.")
        return
    out.print(
        f"[bold]{len(rows)} quarantined records[/]  (raw bytes: tracewatch quarantine show ID)"
    )
    for r in rows:
        where = f"{r['source_file']}" + (f":{r['line']}" if r["line"] else "")
        tried = f" via {r['adapter']}" if r["adapter"] else ""
        out.print(
            f"[yellow]{r['quarantine_id']}[/] {where}  [bold]{r['reason']}[/]{tried}",
            highlight=False,
        )
        out.print(f"    {r['error']}", highlight=False, soft_wrap=False)


@quarantine_app.command("show")
def quarantine_show(quarantine_id: str, db: DbOption = None) -> None:
    """Print the kept raw bytes of one rejected record (to fix and re-ingest it)."""
    with _open(db, read_only=True) as store:
        raw = store.quarantined_raw(quarantine_id)
    if raw is None:
        raise _fail(f"no quarantined record {quarantine_id!r} (see tracewatch quarantine list)", 1)
    sys.stdout.buffer.write(raw + (b"" if raw.endswith(b"\n") else b"\n"))


@app.command("summarize")
def summarize_cmd(
    summarizer: Annotated[
        str, typer.Option("--summarizer", "-s", help="Backend (see `tracewatch summarizers`).")
    ] = "embedded",
    model: Annotated[str | None, typer.Option(help="Model name for the backend.")] = None,
    vllm_url: Annotated[
        str, typer.Option("--vllm-url", help="vLLM's OpenAI-compatible endpoint.")
    ] = "http://127.0.0.1:8000/v1",
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 8,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Ask again about content whose answer a greedy model (vLLM, temperature 0) "
            "cut off or answered off-schema before; by default that answer is settled.",
        ),
    ] = False,
    vllm_engine_args: EngineArgsOption = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Summarize every stored interaction not yet summarized by this backend/model/prompt.

    Summaries are cached by content: a re-run summarizes nothing twice, and the same content
    from many accounts is summarized once. Failures are recorded with their reason.
    """
    import asyncio

    from tracewatch.monitor.summarize import summarize_store

    eargs = engine_args(vllm_engine_args)
    store = _open(db)
    try:
        backend = _backend(store.path, summarizer, model, vllm_url, eargs)
        backend.processes = True  # large batches on every core (the embedded backend)
        todo = store.count_unsummarized(
            backend.name, backend.model, backend.prompt_version, include_settled=retry_failed
        )
        progress = Progress(
            TextColumn("[bold]summarize[/]"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeRemainingColumn(),
            console=err,
            disable=json or not err.is_terminal,
            transient=True,
        )
        with progress:
            task = progress.add_task("summarize", total=todo)
            report = run_stage(
                backend,
                summarize_store(
                    store,
                    backend,
                    concurrency,
                    on_progress=lambda n: progress.advance(task, n),
                    retry_settled=retry_failed,
                ),
            )
            asyncio.run(backend.aclose())
    finally:
        store.close()
    if json:
        _print_json(report.as_dict())
        return
    table = Table(
        title=f"summaries by {report.backend} ({report.model}, {report.prompt_version})",
        title_justify="left",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("summarized now", f"[green]{report.summarized}[/]")
    table.add_row("already cached", str(report.cached))
    table.add_row("failed", f"[red]{report.failed}[/]" if report.failed else "0")
    for reason, n in report.failures_by_reason.most_common(10):
        table.add_row(f"  {reason}", str(n))
    if report.settled:
        table.add_row(
            "not asked again (answer rejected before; --retry-failed)", str(report.settled)
        )
    table.add_row("tokens in / out", f"{report.tokens_in} / {report.tokens_out}")
    out.print(table)


@app.command("summarizers")
def summarizers_cmd(json: JsonOption = False) -> None:
    """The summary backends, chosen with `tracewatch summarize --summarizer NAME`."""
    from tracewatch.summarizers.registry import names

    rows = [{"name": k, "description": v} for k, v in names().items()]
    if json:
        _print_json(rows)
        return
    table = Table("summarizer", "what it is", title="summary backends", title_justify="left")
    for r in rows:
        table.add_row(r["name"], r["description"])
    out.print(table)


@app.command("formats")
def formats_cmd(json: JsonOption = False) -> None:
    """The trace formats tracewatch reads, in the order detection tries them."""
    spellings = format_aliases()
    rows = [
        {
            "name": a.name,
            "description": a.description,
            "versions": a.versions,
            "hint_spellings": spellings[a.name],
        }
        for a in all_adapters()
    ]
    if json:
        _print_json(rows)
        return
    table = Table(
        "format",
        "reads",
        "versions",
        "hint also accepted as",
        title="trace formats",
        title_justify="left",
    )
    for r in rows:
        table.add_row(r["name"], r["description"], r["versions"], ", ".join(r["hint_spellings"]))
    out.print(table)


@corpus_app.command("generate")
def corpus_generate(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write envelopes into.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same corpus.")] = 7,
    interactions: Annotated[
        int, typer.Option("--interactions", "-n", min=1, help="How many interactions.")
    ] = 400,
    accounts: Annotated[int, typer.Option(min=1, help="How many accounts.")] = 24,
    days: Annotated[int, typer.Option(min=1, help="Days the corpus spans.")] = 14,
    spam_campaign_accounts: Annotated[
        int,
        typer.Option(
            min=0,
            help="Add this many accounts that post one templated promotion on 15 forums "
            "over a week (a planted campaign).",
        ),
    ] = 0,
    json: JsonOption = False,
) -> None:
    """Write a seeded corpus of Anthropic and OpenAI computer-use envelopes (.jsonl)."""
    from tracewatch.eval.corpus import CorpusSpec, write_corpus

    spec = CorpusSpec(
        seed=seed,
        interactions=interactions,
        accounts=accounts,
        days=days,
        spam_campaign_accounts=spam_campaign_accounts,
    )
    written = write_corpus(spec, out_dir)
    if json:
        _print_json(written)
        return
    out.print(
        f"wrote {written['interactions']} interactions for {written['accounts']} accounts "
        f"to {written['path']}"
    )


# -- rollup ---------------------------------------------------------------------------------


def _rollup(store: Store, backend: Any, opts: Any, quiet: bool) -> Any:

    from tracewatch.monitor.rollup import run_rollup

    progress = Progress(
        TextColumn("[bold]rollup[/] {task.fields[what]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} summaries read"),
        console=err,
        disable=quiet or not err.is_terminal,
        transient=True,
    )

    def on_progress(event: str, units: int, members: int) -> None:
        if event.startswith("plan:"):
            progress.update(task, what=event.removeprefix("plan:") + "s")
        if event == "reduce":
            progress.advance(task, members)
        else:
            progress.update(task, total=(progress.tasks[0].total or 0) + members)

    with progress:
        task = progress.add_task("rollup", total=0, what="")
        return run_stage(backend, run_rollup(store, backend, opts, on_progress=on_progress))


def _rollup_table(report: Any) -> Table:
    table = Table(
        title=f"rollup {report.run_id} ({report.window} windows)"
        + (" [yellow]resumed[/]" if report.resumed else ""),
        title_justify="left",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("account windows rolled up", f"[green]{report.windows_rolled}[/]")
    table.add_row("  unchanged, kept", str(report.windows_unchanged))
    table.add_row("account periods rolled up", str(report.periods_rolled))
    table.add_row("  unchanged, kept", str(report.periods_unchanged))
    table.add_row(
        "campaigns found", f"[bold]{report.campaigns_found}[/]" if report.campaigns_found else "0"
    )
    table.add_row("  summarized now", str(report.campaigns_rolled))
    table.add_row("  retired (no longer found)", str(report.campaigns_retired))
    table.add_row("chunk summaries written", str(report.partials))
    table.add_row("extra levels (chunks of chunks)", str(report.extra_levels))
    if report.model_failures:
        table.add_row("model failures (computed text used)", f"[red]{report.model_failures}[/]")
    if report.unsummarized_interactions:
        table.add_row(
            "interactions without a summary", f"[yellow]{report.unsummarized_interactions}[/]"
        )
    table.add_row("tokens in / out", f"{report.tokens_in} / {report.tokens_out}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    return table


def _rollup_options(**kw: Any) -> Any:
    from pydantic import ValidationError

    from tracewatch.monitor.envelope import describe_validation_error
    from tracewatch.monitor.rollup import RollupOptions

    try:
        return RollupOptions(**kw)
    except ValidationError as exc:
        raise _fail(describe_validation_error(exc)) from None


@app.command("rollup")
def rollup_cmd(
    window: WindowOption = "1d",
    since: SinceOption = None,
    until: UntilOption = None,
    account: AccountsOption = None,
    budget_tokens: BudgetOption = 6000,
    campaigns: CampaignsOption = True,
    summarizer: SummarizerOption = "embedded",
    model: ModelOption = None,
    vllm_url: VllmUrlOption = "http://127.0.0.1:8000/v1",
    concurrency: Annotated[int, typer.Option(min=1, help="Summaries in flight at once.")] = 8,
    shard_size: ShardOption = 2000,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """Roll interaction summaries up per account and window, per account and week, and across
    accounts into campaigns.

    Reads the summaries `tracewatch summarize` wrote with the same --summarizer/--model.
    Only windows whose interactions changed since the last rollup are summarized again. A
    rollup that was killed resumes where it stopped when the same command is run again
    (checkpoints are kept in DB.rollup.sqlite).
    """
    opts = _rollup_options(
        window=window,
        since=since,
        until=until,
        accounts=account or [],
        budget_tokens=budget_tokens,
        campaigns=campaigns,
        concurrency=concurrency,
        shard_size=shard_size,
    )
    store = _open(db)
    try:
        backend = _backend(store.path, summarizer, model, vllm_url)
        report = _rollup(store, backend, opts, quiet=json)
    finally:
        store.close()
    if json:
        _print_json(report.model_dump())
        return
    out.print(_rollup_table(report))
    if report.unsummarized_interactions:
        out.print(
            f"[dim]{report.unsummarized_interactions} interactions have no {backend.name} summary "
            "and are only counted; run[/] tracewatch summarize"
            + (f" --summarizer {summarizer}" if summarizer != "embedded" else "")
        )


@app.command("run")
def run_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(help="Files, folders or - for stdin, as for `ingest`.", show_default=False),
    ],
    format: Annotated[
        str | None, typer.Option("--format", "-f", help="Trace format, if not detected.")
    ] = None,
    default_account: Annotated[
        str | None,
        typer.Option("--default-account", help="Account for bare traces without an envelope."),
    ] = None,
    window: WindowOption = "1d",
    budget_tokens: BudgetOption = 6000,
    campaigns: CampaignsOption = True,
    summarizer: SummarizerOption = "embedded",
    model: ModelOption = None,
    vllm_url: VllmUrlOption = "http://127.0.0.1:8000/v1",
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 8,
    vllm_engine_args: EngineArgsOption = None,
    judge: JudgeOption = "signals",
    rubrics: RubricDirOption = None,
    reread: RereadOption = False,
    db: DbOption = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local: this process. ray: Ray Data across a cluster's workers (pip install "
            "'tracewatch\\[ray]'); same results, written to --db at the end.",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --engine ray: a running cluster (auto, ray://host:10001); "
            "default starts a local Ray with --workers + 1 CPUs.",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: folder or object-store URI (s3://...) for the stages' "
            "Parquet files, which make reruns resume; default DB.ray beside the database.",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="With --engine ray: parallel workers per stage.")
    ] = 2,
    shards: Annotated[
        int,
        typer.Option(
            min=1,
            hidden=True,
            help="With --engine ray: account shards of the rollup (a rerun with another "
            "count redoes every shard).",
        ),
    ] = 16,
    vllm_device: Annotated[
        str,
        typer.Option(
            "--vllm-device",
            help="With --engine ray --summarizer vllm-offline: gpu runs one vLLM engine per "
            "worker on its own GPU (tensor_parallel_size in --vllm-engine-args for more); cpu "
            "runs vLLM's CPU build.",
        ),
    ] = "gpu",
    accelerator_type: Annotated[
        str | None,
        typer.Option(
            "--accelerator-type",
            help="With --engine ray --summarizer vllm-offline: only GPUs of this Ray "
            "accelerator type (H100, A100...).",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """The main job in one go: ingest PATHS, summarize what is new, roll up what changed, judge
    the aggregates against the rubrics and open cases in the enforcement queue.

    Each step is incremental, so running it again on a growing dump does only the new work,
    and never opens a second case for the same thing. With --engine ray the same steps run on
    Ray Data workers and a rerun redoes only the inputs, summaries and shards not finished.
    """
    if engine not in ("local", "ray"):
        raise _fail(f"unknown --engine {engine!r}; use local or ray")
    if vllm_device not in ("gpu", "cpu"):
        raise _fail(f"unknown --vllm-device {vllm_device!r}; use gpu or cpu")
    import asyncio

    from tracewatch.monitor.judge import JudgeOptions, run_judge
    from tracewatch.monitor.summarize import summarize_store
    from tracewatch.rubrics.loader import RubricError, load_calibrations, load_rubrics
    from tracewatch.rubrics.registry import create_judge

    if engine == "ray":
        try:
            import tracewatch.monitor.ray_engine  # noqa: F401 - fail before opening anything
        except ImportError as exc:
            hint = "pip install 'tracewatch[ray]'"
            raise _fail(f"--engine ray needs Ray Data: {hint} ({exc})") from None
    opts = _rollup_options(
        window=window, budget_tokens=budget_tokens, campaigns=campaigns, concurrency=concurrency
    )
    iopts = IngestOptions(format=format, account=default_account, reread=reread)
    eargs = engine_args(vllm_engine_args)
    try:
        if engine == "ray" and "-" in paths:
            raise PathError("-: --engine ray reads files, folders or URIs, not stdin")
        input_size(paths if engine == "local" else [p for p in paths if "://" not in p])
        rubric_list = load_rubrics(rubrics or [])
        calibrations = load_calibrations()
    except (PathError, RubricError) as exc:
        raise _fail(str(exc)) from None
    store = _open(db)
    try:
        backend = _backend(store.path, summarizer, model, vllm_url, eargs)
        try:
            judge_impl = create_judge(judge, backend)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        jopts = JudgeOptions(backend=backend.name, model=backend.model, concurrency=concurrency)
        if engine == "ray":
            from tracewatch.monitor.ray_engine import RayOptions, run_on_ray
            from tracewatch.monitor.ray_engine.stages import BackendSpec
            from tracewatch.summarizers.redaction import load_key

            spec = BackendSpec(
                name=summarizer,
                model=model,
                vllm_url=vllm_url,
                engine_args=eargs,
                key=load_key(store.path),
                concurrency=concurrency,
            )
            ray_opts = RayOptions(
                output=output or f"{store.path}.ray",
                address=ray_address,
                workers=workers,
                shards=shards,
                vllm_device=vllm_device,
                accelerator_type=accelerator_type,
                progress=not json and err.is_terminal,
            )
            try:
                ray_report = run_on_ray(
                    paths,
                    store,
                    backend,
                    spec,
                    judge_impl,
                    ray_opts,
                    ingest_options=iopts,
                    rollup_options=opts,
                    judge_options=jopts,
                    rubrics=rubric_list,
                    calibrations=calibrations,
                    on_stage=(lambda s: None) if json else (lambda s: err.print(f"[dim]{s}[/]")),
                )
            except (PathError, DetectionError) as exc:
                raise _fail(str(exc)) from None
            ing, summ = ray_report.ingest, ray_report.summarize
            report, judged = ray_report.rollup, ray_report.judge
        else:
            spin = not json and err.is_terminal
            with err.status("ingesting", spinner="dots") if spin else nullcontext():
                try:
                    # the embedded summary is made where each interaction is built
                    made_here = backend if backend.name == "embedded" else None
                    ing = ingest(
                        paths, store, iopts, summarizer=made_here, processes=True
                    ).as_dict()
                except (PathError, DetectionError) as exc:
                    raise _fail(str(exc)) from None
            with err.status("summarizing", spinner="dots") if spin else nullcontext():
                summ = run_stage(backend, summarize_store(store, backend, concurrency)).as_dict()
            # made while ingesting: made by this run, not found in the cache
            summ["summarized"] += ing["summarized"]
            summ["cached"] -= ing["summarized"]
            report = _rollup(store, backend, opts, quiet=json)
            with err.status("judging", spinner="dots") if spin else nullcontext():
                judged = run_stage(
                    backend, run_judge(store, judge_impl, jopts, rubric_list, calibrations)
                )
        asyncio.run(backend.aclose())
    finally:
        store.close()
    if json:
        if engine == "ray":
            _print_json({"db": store.path, **ray_report.model_dump()})
            return
        _print_json(
            {
                "db": store.path,
                "ingest": ing,
                "summarize": summ,
                "rollup": report.model_dump(),
                "judge": judged.model_dump(),
            }
        )
        return
    where = ""
    if engine == "ray":
        where = (
            f"[bold]ray[/] ({ray_report.engine['address']}, {workers} workers, files in "
            f"{ray_report.engine['output']}): "
        )
    out.print(
        f"{where}ingested [green]{ing['ingested']}[/] new interactions ({ing['duplicates']} "
        f"duplicates, {ing['quarantined']} quarantined); summarized [green]"
        f"{summ['summarized']}[/] ({summ['cached']} cached, {summ['failed']} failed)"
        + (
            f"; {ray_report.reused['inputs']} of {ing['files']} inputs already adapted"
            if engine == "ray"
            else ""
        )
    )
    mismatched = sum(ing.get("format_hint_mismatches", {}).values())
    if mismatched:
        out.print(
            f"[dim]{mismatched} records' format hint did not fit; read by detection instead "
            "(see `ingest --json`: format_hint_mismatches)[/]"
        )
    out.print(_rollup_table(report))
    out.print(judge_table(judged))
    if ing["quarantined"]:
        out.print("[dim]see the quarantined records with[/] tracewatch quarantine list")


@app.command("aggregates")
def aggregates_cmd(
    kind: Annotated[
        str | None,
        typer.Option(help="account_window, account_period or campaign (default: all)."),
    ] = None,
    account: Annotated[
        str | None, typer.Option("--account", "-a", help="Only aggregates covering this account.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 20,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """List rollup aggregates, campaigns first, with their signals and text."""
    store = _open(db, read_only=True)
    try:
        where, params = [], []
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if account:
            where.append("list_contains(accounts, ?)")
            params.append(account)
        cur = store.con.execute(
            "SELECT aggregate_id, kind, subject, window_size, window_start, window_end, accounts,"
            " levels, backend, model, text, signals, links FROM aggregates"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY CASE kind WHEN 'campaign' THEN 0 WHEN 'account_period' THEN 1 ELSE 2"
            " END, len(accounts) DESC, subject, window_start LIMIT ?",
            [*params, limit],
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        store.close()
    for r in rows:
        r["signals"] = orjson.loads(r["signals"])
        r["links"] = orjson.loads(r["links"])
    if json:
        _print_json(rows)
        return
    if not rows:
        out.print("no aggregates; run [bold]tracewatch rollup[/] first")
        return
    for r in rows:
        sig = r["signals"]
        out.print(
            f"[bold]{r['kind']}[/] {r['subject']}  {r['window_start']:%Y-%m-%d %H:%M} "
            f"({r['window_size']})  {sig['interactions']} interactions, "
            f"{len(r['accounts'])} account(s), {r['levels']} level(s)",
            highlight=False,
        )
        out.print(f"  {r['text']}", highlight=False, soft_wrap=True)
        for link in r["links"][:5]:
            out.print(
                f"  [dim]{link['kind']}[/] shared by {len(link['accounts'])}: {link['key'][:120]}",
                highlight=False,
            )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
