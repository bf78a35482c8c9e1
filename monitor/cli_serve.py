"""`tracewatch serve`: run the receiver with uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from tracewatch.monitor.cli_common import DbOption, _fail, err
from tracewatch.monitor.store import StoreError, default_db_path


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8787,
    db: DbOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file: webhook_secrets, otlp_keys (sender = key), identity_attributes, "
            "tolerance_s, max_body_bytes, max_backlog, trace_idle_s, process_every_s, ...",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int | None, typer.Option(help="Refuse bodies larger than this with 413.")
    ] = None,
    trace_idle: Annotated[
        float | None,
        typer.Option("--trace-idle", help="Seconds after which a trace without its root closes."),
    ] = None,
    process: Annotated[
        bool | None,
        typer.Option(
            "--process/--no-process",
            help="Summarize, roll up and judge in the background (default on).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Receive traces over HTTP: Standard Webhooks envelopes on POST /v1/interactions and
    OpenTelemetry OTLP/HTTP (protobuf or JSON) on POST /v1/traces; GET /healthz, /readyz and
    /metrics (Prometheus); the reviewers' API (/v1/cases, /v1/reports) for
    `tracewatch queue|report --server URL`.

    Credentials come from TRACEWATCH_WEBHOOK_SECRETS (whsec_ secrets, space- or
    comma-separated; several during a rotation), TRACEWATCH_OTLP_KEYS (sender=key pairs) and
    TRACEWATCH_REVIEW_KEYS (reviewer=key pairs; the audit trail records the key's name), or
    from --config. A request is answered 2xx only after its data is committed to the
    database. The server holds the database while it runs (DuckDB allows one writing
    process): other tracewatch commands on the same --db fail at once and say so; reviewers
    reach the queue and reports through the server with --server.
    """
    import uvicorn

    from tracewatch.monitor.server.app import create_app
    from tracewatch.monitor.server.config import ConfigError, load_config

    try:
        cfg = load_config(
            config,
            host=host,
            port=port,
            db=db or default_db_path(),
            max_body_bytes=max_body_bytes,
            trace_idle_s=trace_idle,
            process=process,
        )
        app = create_app(cfg)
    except (ConfigError, StoreError) as exc:
        raise _fail(str(exc)) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    err.print(
        f"tracewatch serving [bold]{cfg.db}[/] on http://{cfg.host}:{cfg.port} "
        f"(webhook secrets: {len(cfg.webhook_secrets)}, OTLP senders: {len(cfg.otlp_keys)})",
        highlight=False,
    )
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=log_level, access_log=False)
