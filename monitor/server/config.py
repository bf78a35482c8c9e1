"""Server settings, from a TOML file and the environment. Secrets are `SecretStr`, so they
print as `**********` in logs, errors and `--help`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from tracewatch.monitor.envelope import describe_validation_error

DEFAULT_IDENTITY_ATTRIBUTES = ["user.id", "enduser.id", "langfuse.user.id"]


class ConfigError(ValueError):
    """Settings that cannot be used; the message names the file or variable and the field."""


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    db: str = "tracewatch.duckdb"
    webhook_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Standard Webhooks secrets (whsec_ + base64); several during a rotation",
    )
    otlp_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="OTLP sender name -> its bearer key"
    )
    review_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="reviewer name -> bearer key for the queue and report API (/v1/cases, "
        "/v1/reports); the name is what the audit trail records",
    )
    identity_attributes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_IDENTITY_ATTRIBUTES),
        description="span, then resource attributes naming the account, first found wins",
    )
    tolerance_s: int = Field(300, ge=1, description="webhook-timestamp skew accepted")
    max_body_bytes: int = Field(16 << 20, ge=1024)
    max_backlog: int = Field(
        100_000, ge=1, description="interactions and spans not yet processed before 429"
    )
    max_waiting: int = Field(256, ge=1, description="requests waiting for the writer before 429")
    trace_idle_s: float = Field(30.0, gt=0, description="a trace without its root closes after")
    process_every_s: float = Field(5.0, gt=0, description="worker tick")
    process: bool = Field(True, description="summarize, roll up and judge in the background")
    summarizer: str = "embedded"
    window: str = "1d"


def _pairs(var: str, value: str, who: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        name, sep, key = pair.partition("=")
        if not sep or not name or not key:
            raise ConfigError(f"{var}: write {who}=key pairs, comma-separated")
        keys[name] = key
    return keys


def load_config(path: Path | None, **overrides: object) -> ServeConfig:
    """File first, then the environment, then command-line overrides (those not None).

    TRACEWATCH_WEBHOOK_SECRETS: secrets separated by spaces or commas.
    TRACEWATCH_OTLP_KEYS: `sender=key` pairs separated by commas.
    TRACEWATCH_REVIEW_KEYS: `reviewer=key` pairs separated by commas.
    """
    data: dict[str, object] = {}
    where = "settings"
    if path is not None:
        where = str(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    env_secrets = os.environ.get("TRACEWATCH_WEBHOOK_SECRETS")
    if env_secrets:
        data["webhook_secrets"] = env_secrets.replace(",", " ").split()
    for var, field, who in (
        ("TRACEWATCH_OTLP_KEYS", "otlp_keys", "sender"),
        ("TRACEWATCH_REVIEW_KEYS", "review_keys", "reviewer"),
    ):
        if os.environ.get(var):
            data[field] = _pairs(var, os.environ[var], who)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = ServeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe_validation_error(exc)}") from None
    from tracewatch.monitor.server.auth import secret_key

    for n, secret in enumerate(config.webhook_secrets):
        try:
            secret_key(secret.get_secret_value())
        except ValueError as exc:
            raise ConfigError(f"{where}: webhook_secrets.{n}: {exc}") from None
    if not config.webhook_secrets and not config.otlp_keys:
        raise ConfigError(
            "no credentials: set TRACEWATCH_WEBHOOK_SECRETS (Standard Webhooks whsec_ secrets) "
            "and/or TRACEWATCH_OTLP_KEYS (sender=key), or webhook_secrets / otlp_keys in "
            "--config; the server accepts nothing unauthenticated"
        )
    return config
