"""What every `tracewatch` subcommand shares: consoles, common options, error exits, backends.

Kept apart so that command groups (queue, eval) live in their own modules without importing
the main command module.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from tracewatch.monitor.review_client import ReviewClient, ReviewClientError
from tracewatch.monitor.store import Store, StoreError, default_db_path
from tracewatch.monitor.terminal import safe_console

# Both consoles show control characters from trace data as visible symbols (monitor/terminal.py)
out = safe_console(Console())
err = safe_console(Console(stderr=True))

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="DuckDB file (default: $TRACEWATCH_DB or ./tracewatch.duckdb)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="TRACEWATCH_SERVER",
        help="Ask a running `tracewatch serve` (http://host:port) instead of opening --db, "
        "which the server holds; your reviewer key goes in $TRACEWATCH_REVIEW_KEY.",
    ),
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    # Messages carry user text and extras such as tracewatch[vllm]: never read as rich markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _open(db: str | None, read_only: bool = False) -> Store:
    from tracewatch.monitor.processes import worker_count

    try:
        worker_count()  # a bad TRACEWATCH_WORKERS is refused before anything is read
        return Store(db or default_db_path(), read_only=read_only)
    except (StoreError, ValueError) as exc:
        raise _fail(str(exc)) from None


def _only_one(db: str | None, server: str | None) -> None:
    """--db and --server together would leave a reviewer unsure which queue they changed."""
    if db and server:
        raise _fail(
            "give --db or --server, not both (is TRACEWATCH_SERVER set in the environment?)"
        )


def _client(server: str) -> ReviewClient:
    try:
        return ReviewClient(server)
    except ReviewClientError as exc:
        raise _fail(str(exc)) from None


def _remote(server: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """One call to the server's reviewers' API; a refusal exits 2 with the server's reason."""
    with _client(server) as c:
        try:
            return c.post(path, kw) if method == "POST" else c.get(path, **kw)
        except ReviewClientError as exc:
            raise _fail(str(exc)) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


SummarizerOption = Annotated[
    str, typer.Option("--summarizer", "-s", help="Backend (see `tracewatch summarizers`).")
]
ModelOption = Annotated[str | None, typer.Option(help="Model name for the backend.")]
VllmUrlOption = Annotated[
    str, typer.Option("--vllm-url", help="vLLM's OpenAI-compatible endpoint.")
]
WindowOption = Annotated[
    str,
    typer.Option(
        "--window", "-w", help="Tumbling window per account, aligned to UTC: 1h, 6h, 1d or 7d."
    ),
]
SinceOption = Annotated[
    str | None,
    typer.Option(help="Only windows from this time: 2026-10-05, an ISO timestamp, or 7d ago."),
]
UntilOption = Annotated[str | None, typer.Option(help="Only windows up to this time.")]
AccountsOption = Annotated[
    list[str] | None, typer.Option("--account", "-a", help="Only these accounts (repeatable).")
]
BudgetOption = Annotated[
    int,
    typer.Option(
        "--budget-tokens",
        min=1,
        help="Context budget of one summarization call, in tokens (about 4 characters each). "
        "Windows whose summaries do not fit are summarized in chunks, recursively.",
    ),
]
CampaignsOption = Annotated[
    bool, typer.Option("--campaigns/--no-campaigns", help="Detect cross-account campaigns.")
]
ShardOption = Annotated[
    int, typer.Option("--shard-size", min=1, hidden=True, help="Members per parallel task.")
]


EngineArgsOption = Annotated[
    str | None,
    typer.Option(
        "--vllm-engine-args",
        help="With --summarizer vllm-offline: vllm.LLM keyword arguments as a JSON object, "
        'e.g. \'{"max_model_len": 8192, "gpu_memory_utilization": 0.9}\'.',
    ),
]


def engine_args(raw: str | None) -> dict[str, Any]:
    """--vllm-engine-args as a dict, or exit 2 naming what is wrong with it."""
    if not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"--vllm-engine-args is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise _fail("--vllm-engine-args must be a JSON object of vllm.LLM keyword arguments")
    return parsed


def run_stage(backend: Any, work: Any) -> Any:
    """`asyncio.run(work)`, releasing what the backend bound to that loop before it ends (a
    model client's pooled connections), so the next stage's loop starts clean."""
    import asyncio

    async def go() -> Any:
        try:
            return await work
        finally:
            await backend.release()

    return asyncio.run(go())


def _backend(
    db_path: str,
    summarizer: str,
    model: str | None,
    vllm_url: str,
    engine_args: dict[str, Any] | None = None,
) -> Any:
    """The chosen backend, checked; its redaction key is the one beside `db_path`."""

    from tracewatch.summarizers.base import SummarizerError
    from tracewatch.summarizers.redaction import Redactor, load_key
    from tracewatch.summarizers.registry import create

    try:
        backend = create(
            summarizer,
            Redactor(load_key(db_path)),
            {"model": model, "vllm_url": vllm_url, "engine_args": engine_args},
        )
        run_stage(backend, backend.check())
    except (ValueError, SummarizerError) as exc:
        raise _fail(str(exc)) from None
    return backend
