"""The CLI's side of the reviewers' API (`monitor/server/review.py`).

While `tracewatch serve` holds a database no other process can open it, so `tracewatch queue`
and `tracewatch report` take `--server URL` and ask the server instead. Answers are the
library's own models, validated here, so what prints is what a local run would print.
"""

from __future__ import annotations

import os
from typing import Any

# httpx is imported where a client is made: every command imports this module, and only
# those given --server talk to a server.

KEY_ENV = "TRACEWATCH_REVIEW_KEY"


class ReviewClientError(Exception):
    """The server could not be reached or refused; the message says which and why."""


class ReviewClient:
    def __init__(self, url: str, key: str | None = None, timeout: float = 60) -> None:
        key = key or os.environ.get(KEY_ENV)
        if not key:
            raise ReviewClientError(
                f"--server needs your reviewer key in ${KEY_ENV} (one of the server's "
                "TRACEWATCH_REVIEW_KEYS)"
            )
        if not url.startswith(("http://", "https://")):
            raise ReviewClientError(f"--server {url!r}: give a URL such as http://127.0.0.1:8787")
        import httpx

        self.url = url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {key}"}, timeout=timeout
        )

    def __enter__(self) -> ReviewClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        import httpx

        try:
            r = self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ReviewClientError(f"cannot reach {self.url}: {exc}") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code != 200 or not isinstance(body, dict):
            why = body.get("error") or body.get("detail") if isinstance(body, dict) else None
            raise ReviewClientError(
                f"{self.url}{path} answered {r.status_code}: {why or r.text[:300]}"
            )
        return body

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v not in (None, [], False)}
        return self._call("GET", path, params=clean)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", path, json={k: v for k, v in body.items() if v is not None})
