"""Summarizer throughput of any OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp, a proxy).

    python bench/endpoint_bench.py --base-url http://127.0.0.1:8000/v1 --model MODEL \
        [--requests 200] [--concurrency 16] [--max-tokens 700] [--no-schema] [--json]

Sends the exact chat requests the vLLM summarizer backend sends (the fenced, redacted trace and
the JSON schema as `response_format`), built from a generated corpus, `--concurrency` at a
time, and prints requests/s, prompt and completion tokens/s (from the server's `usage`),
latency p50/p90/p99 and how many answers failed or were cut off at max_tokens. The API key is
read from $OPENAI_API_KEY (default "EMPTY", what vLLM accepts). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.ingest import ingest
from tracewatch.monitor.store import Store
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.vllm_backend import VLLMSummarizer


class EndpointFigures(BaseModel):
    base_url: str
    model: str
    requests: int
    concurrency: int
    ok: int
    failed: int
    truncated: int
    seconds: float
    requests_per_s: float
    prompt_tokens_per_s: float
    completion_tokens_per_s: float
    latency_p50_s: float
    latency_p90_s: float
    latency_p99_s: float
    errors: dict[str, int]


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def request_bodies(n: int, model: str, max_tokens: int, schema: bool, seed: int) -> list[dict]:
    """n real summarization requests, one per generated interaction (cycled if needed)."""
    backend = VLLMSummarizer(Redactor(b"bench"), model, max_tokens=max_tokens)
    spec = CorpusSpec(seed=seed, interactions=min(n, 2000), otlp_share=0.15)
    with tempfile.TemporaryDirectory(prefix="tracewatch-bench-") as tmp:
        path = write_corpus(spec, Path(tmp))["path"]
        with Store(Path(tmp) / "b.duckdb") as store:
            ingest([path], store)
            rows = store.con.execute("SELECT interaction_id FROM interactions").fetchall()
            ids = [r[0] for r in rows]
            inters = store.load_interactions(sorted(ids))
    bodies = []
    for inter in inters:
        body = backend.request(inter)
        if not schema:
            body.pop("response_format")
        bodies.append(body)
    return [bodies[i % len(bodies)] for i in range(n)]


async def run(
    base_url: str,
    model: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    api_key: str = "EMPTY",
    timeout_s: float = 300.0,
) -> EndpointFigures:
    import openai

    client = openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0
    )
    latencies: list[float] = []
    tokens = {"prompt": 0, "completion": 0}
    errors: dict[str, int] = {}
    truncated = 0
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)

    async def worker() -> None:
        nonlocal truncated
        while not queue.empty():
            body = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                resp = await client.chat.completions.create(**body)
            except openai.APIStatusError as exc:
                key = f"HTTP {exc.status_code}"
                errors[key] = errors.get(key, 0) + 1
                continue
            except openai.APIConnectionError as exc:
                key = type(exc).__name__
                errors[key] = errors.get(key, 0) + 1
                continue
            latencies.append(time.perf_counter() - t0)
            if resp.usage:
                tokens["prompt"] += resp.usage.prompt_tokens
                tokens["completion"] += resp.usage.completion_tokens
            if resp.choices and resp.choices[0].finish_reason == "length":
                truncated += 1

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await client.close()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return EndpointFigures(
        base_url=base_url,
        model=model,
        requests=len(bodies),
        concurrency=concurrency,
        ok=len(lat),
        failed=sum(errors.values()),
        truncated=truncated,
        seconds=round(wall, 2),
        requests_per_s=round(len(lat) / wall, 2),
        prompt_tokens_per_s=round(tokens["prompt"] / wall, 1),
        completion_tokens_per_s=round(tokens["completion"] / wall, 1),
        latency_p50_s=round(quantile(lat, 0.5), 3),
        latency_p90_s=round(quantile(lat, 0.9), 3),
        latency_p99_s=round(quantile(lat, 0.99), 3),
        errors=errors,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("--model", required=True, help="the served model name")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=700)
    ap.add_argument("--no-schema", action="store_true", help="omit response_format json_schema")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = ap.parse_args()
    bodies = request_bodies(
        args.requests, args.model, args.max_tokens, not args.no_schema, args.seed
    )
    figures = asyncio.run(
        run(
            args.base_url,
            args.model,
            bodies,
            args.concurrency,
            api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"),
        )
    )
    if args.json:
        print(json.dumps(figures.model_dump(), indent=2))
        return
    f = figures
    print(f"{f.base_url} model {f.model}: {f.requests} requests, concurrency {f.concurrency}")
    print(f"  ok {f.ok}, failed {f.failed} {f.errors or ''}, cut off at max_tokens {f.truncated}")
    print(
        f"  {f.requests_per_s} requests/s, {f.prompt_tokens_per_s} prompt tokens/s, "
        f"{f.completion_tokens_per_s} completion tokens/s over {f.seconds} s"
    )
    print(f"  latency p50 {f.latency_p50_s} s, p90 {f.latency_p90_s} s, p99 {f.latency_p99_s} s")
    if f.ok == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
