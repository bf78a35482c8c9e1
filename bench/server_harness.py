"""A real `tracewatch serve` process on 127.0.0.1 for tests and the load bench, and a signed
webhook sender that uses the Standard Webhooks reference library, not our own signer."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from standardwebhooks.webhooks import Webhook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_secret(seed: bytes) -> str:
    return "whsec_" + base64.b64encode(seed.ljust(24, b"\0")[:24]).decode()


class Running:
    """One server process; `stop` is a clean SIGTERM, `kill` a SIGKILL."""

    def __init__(
        self,
        db: Path,
        secrets: list[str],
        otlp_keys: dict[str, str],
        config: dict[str, Any] | None = None,
        log: Path | None = None,
    ) -> None:
        self.db, self.port = db, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "TRACEWATCH_WEBHOOK_SECRETS": " ".join(secrets),
            "TRACEWATCH_OTLP_KEYS": ",".join(f"{k}={v}" for k, v in otlp_keys.items()),
        }
        self.args = ["--db", str(db), "--port", str(self.port), "--log-level", "warning"]
        if config:
            cfg = db.with_suffix(".toml")
            cfg.write_text(
                "".join(f"{k} = {orjson.dumps(v).decode()}\n" for k, v in config.items())
            )
            self.args += ["--config", str(cfg)]
        self.log = log or db.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Running:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracewatch.monitor.cli", "serve", *self.args],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def __enter__(self) -> Running:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def signed(secret: str, body: bytes, webhook_id: str, at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body.decode()),
        "content-type": "application/json",
    }


def envelope(account: str, n: int, text: str = "", pad: int = 0, day: int = 0) -> dict[str, Any]:
    """A small OpenAI Responses computer-use trace in the identity envelope, `day` days after
    the first (a later day falls in new windows, as a receiver sees day after day)."""
    typed = f"{text or 'hello from the load test'} #{n}" + ("x" * pad)
    started = datetime(2026, 10, 5, 10 + n % 10, n % 60, tzinfo=UTC) + timedelta(days=day)
    return {
        "account_id": account,
        "interaction_id": f"{account}-{n}",
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "trace": {
            "input": [
                {"role": "user", "content": f"post a reply on forum{n % 7}.example"},
                {
                    "type": "computer_call",
                    "call_id": f"c{n}",
                    "action": {"type": "type", "text": typed},
                },
                {
                    "type": "computer_call_output",
                    "call_id": f"c{n}",
                    "output": {"type": "computer_screenshot"},
                    "current_url": f"https://forum{n % 7}.example/t/{n}",
                },
            ]
        },
    }
