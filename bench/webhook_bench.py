"""Load on `tracewatch serve` over loopback: sustained requests/s and latency for 1 KB and
100 KB signed envelopes, then `kill -9` of the server mid-load and a restart, checking that
every acknowledged interaction is in the store exactly once.

    python bench/webhook_bench.py [--requests 2000] [--big-requests 300] [--concurrency 16]
                                  [--max-seconds 120] [--no-process] [--json]
                                  [--growth-rounds 5] [--growth-requests 1000]
                                  [--growth-base N] [--only-growth]

The growth phase measures the receiver's processing lag as its database grows: rounds of
`--growth-requests` interactions, each waited on until a worker pass leaves nothing waiting.
With `--growth-base N`, N interactions of a generated corpus are first backfilled with
`tracewatch run` and the rounds post the rest of that corpus on top, so the lag is that of a
receiver on a database of N.

Bounded in count and time; loopback only. The server runs as deployed (background worker on,
unless --no-process), so on a small machine the figures include its competition for CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_harness import Running, envelope, new_secret, signed

SECRET = new_secret(b"bench secret")
KEYS = {"bench": "bench-key"}


def body_of(account: str, n: int, size: int, day: int = 0) -> tuple[str, bytes]:
    env = envelope(account, n, day=day)
    base = len(orjson.dumps(env))
    env = envelope(account, n, pad=max(0, size - base), day=day)
    return env["interaction_id"], orjson.dumps(env)


async def load(
    url: str,
    account: str,
    size: int,
    total: int,
    concurrency: int,
    max_seconds: float,
    acked: list[str] | None = None,
    accounts: int = 1,
    day: int = 0,
    first: int = 0,
) -> dict[str, Any]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    errors = 0
    next_n = first
    total += first
    deadline = time.perf_counter() + max_seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal next_n, errors
        while next_n < total and time.perf_counter() < deadline:
            n = next_n
            next_n += 1
            who = f"{account}{n % accounts}" if accounts > 1 else account
            iid, body = body_of(who, n, size, day)
            headers = signed(SECRET, body, f"{who}-{n}")
            t = time.perf_counter()
            try:
                r = await client.post(url + "/v1/interactions", content=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                if acked is not None:
                    return  # the server is gone
                continue
            latencies.append(time.perf_counter() - t)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code == 200 and acked is not None:
                acked.append(iid)

    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [0.0] * 99
    return {
        "size_bytes": len(body_of(account, 0, size)[1]),
        "requests": len(latencies),
        "ok": codes.get(200, 0),
        "codes": codes,
        "errors": errors,
        "seconds": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1) if wall else 0.0,
        "mb_per_s": round(len(latencies) * size / wall / 1e6, 2) if wall else 0.0,
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
    }


def crash_check(tmp: Path, concurrency: int, seconds: float, process: bool) -> dict[str, Any]:
    db = tmp / "crash.duckdb"
    srv = Running(db, [SECRET], KEYS, {"process": process}).start()
    acked: list[str] = []

    async def run() -> None:
        task = asyncio.create_task(
            load(srv.url, "crash", 1024, 10**9, concurrency, seconds * 3, acked)
        )
        await asyncio.sleep(seconds)
        srv.kill()
        await task

    asyncio.run(run())
    t = time.perf_counter()
    with Running(db, [SECRET], KEYS, {"process": process}) as again:
        restart_s = time.perf_counter() - t
        ready = httpx.get(again.url + "/readyz").status_code
    con = duckdb.connect(str(db), read_only=True)
    counts = dict(
        con.execute("SELECT interaction_id, count(*) FROM interactions GROUP BY 1").fetchall()
    )
    con.close()
    missing = [i for i in acked if i not in counts]
    return {
        "acknowledged": len(acked),
        "stored": len(counts),
        "stored_unacknowledged": len(set(counts) - set(acked)),
        "missing": len(missing),
        "stored_twice": sum(1 for n in counts.values() if n != 1),
        "restart_to_healthy_s": round(restart_s, 2),
        "ready_after_restart": ready == 200,
        "ok": not missing and all(n == 1 for n in counts.values()),
    }


def growth(tmp: Path, rounds: int, per_round: int, concurrency: int) -> list[dict[str, Any]]:
    """The receiver's processing lag as its database grows: each round posts `per_round`
    interactions of a new day from 50 accounts, then waits for the worker to finish a pass that
    leaves nothing waiting. The lag is from the round's last answer to the end of that pass."""
    cfg = {"process": True, "process_every_s": 1.0, "max_body_bytes": 1 << 20}
    out: list[dict[str, Any]] = []
    total = 0
    with Running(tmp / "growth.duckdb", [SECRET], KEYS, cfg) as srv:
        for r in range(rounds):
            sent = asyncio.run(load(srv.url, "g", 1024, per_round, concurrency, 600,
                                    accounts=50, day=r, first=r * per_round))  # fmt: skip
            ended = time.time()
            backlog_at_end, done_at = wait_for_pass(srv.url, ended)
            total += sent["ok"]
            out.append({
                "round": r + 1,
                "posted_ok": sent["ok"],
                "stored_total": total,
                "backlog_at_end_of_round": backlog_at_end,
                "lag_s": round(done_at - ended, 1),
                "round_seconds": sent["seconds"],
            })  # fmt: skip
    return out


async def post_lines(url: str, lines: list[bytes], concurrency: int) -> dict[str, Any]:
    """Post each JSONL envelope as it is, signed, `concurrency` at a time."""
    codes: dict[int, int] = {}
    queue = list(reversed(lines))
    start = time.perf_counter()

    async def one(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop().strip()
            headers = signed(SECRET, body, f"g-{len(queue)}-{hash(body)}")
            r = await client.post(url + "/v1/interactions", content=body, headers=headers)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(concurrency)))
    wall = round(time.perf_counter() - start, 2)
    return {"ok": codes.get(200, 0), "codes": codes, "seconds": wall}


def wait_for_pass(url: str, ended: float) -> tuple[int, float]:
    """The backlog when a round's posting ended, and when the first worker pass after it that
    left nothing waiting finished."""
    backlog_at_end = None
    while True:
        body = httpx.get(url + "/readyz", timeout=30).json()
        if backlog_at_end is None:
            backlog_at_end = body["backlog"]
        age = body["last_pass_age_s"]
        done_at = time.time() - age if age is not None else 0.0
        if body["backlog"] == 0 and done_at > ended:
            return backlog_at_end, done_at
        if time.time() - ended > 1800:
            raise SystemExit(f"the worker did not catch up in 30 minutes: {body}")
        time.sleep(0.5)


def growth_on_corpus(
    tmp: Path, base: int, rounds: int, per_round: int, concurrency: int, seed: int
) -> dict[str, Any]:
    """The receiver's lag on a large database: `base` interactions of a generated corpus are
    backfilled with `tracewatch run` (as a dump would be), then the server runs on that database
    and each round posts the next `per_round` of the same corpus, in time order, as an agent
    platform would. The lag is measured as in `growth`."""
    from run_bench import tracewatch_run
    from scale_bench import read_lines

    from tracewatch.eval.corpus import CorpusSpec, write_corpus

    total = base + rounds * per_round
    info = write_corpus(
        CorpusSpec(seed=seed, interactions=total, accounts=max(10, total // 40),
                   otlp_share=0.15, spam_campaign_accounts=5),
        tmp / "growth-corpus",
    )  # fmt: skip
    lines = read_lines([Path(info["path"])])

    def when(line: bytes) -> str:
        doc = orjson.loads(line)
        return str(doc.get("started_at") or "") if isinstance(doc, dict) else ""

    lines.sort(key=when)
    db = tmp / "growth-base.duckdb"
    base_path = tmp / "growth-base.jsonl"
    base_path.write_bytes(b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines[:base]))
    backfill_s, _ = tracewatch_run(base_path, db)
    out: dict[str, Any] = {"base": base, "backfill_s": round(backfill_s, 1), "rounds": []}
    cfg = {"process": True, "process_every_s": 1.0, "max_body_bytes": 1 << 20}
    with Running(db, [SECRET], KEYS, cfg) as srv:
        wait_for_pass(srv.url, time.time())  # the first pass finds nothing new
        for r in range(rounds):
            chunk = lines[base + r * per_round : base + (r + 1) * per_round]
            sent = asyncio.run(post_lines(srv.url, chunk, concurrency))
            ended = time.time()
            backlog_at_end, done_at = wait_for_pass(srv.url, ended)
            out["rounds"].append({
                "round": r + 1,
                "posted_ok": sent["ok"],
                "codes": sent["codes"],
                "stored_total": base + (r + 1) * per_round,
                "backlog_at_end_of_round": backlog_at_end,
                "lag_s": round(done_at - ended, 1),
                "round_seconds": sent["seconds"],
            })  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="1 KB requests")
    ap.add_argument("--big-requests", type=int, default=300, help="100 KB requests")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-seconds", type=float, default=120, help="per phase")
    ap.add_argument("--kill-after", type=float, default=5, help="seconds of load before kill -9")
    ap.add_argument("--no-process", action="store_true", help="background worker off")
    ap.add_argument("--growth-rounds", type=int, default=5,
                    help="rounds of the growth phase (0 skips it)")  # fmt: skip
    ap.add_argument("--growth-requests", type=int, default=1000, help="interactions per round")
    ap.add_argument(
        "--growth-base",
        type=int,
        default=0,
        help="backfill this many interactions of a generated corpus first, then post rounds"
        " of the same corpus on top (0: synthetic rounds only)",
    )
    ap.add_argument("--seed", type=int, default=11, help="corpus seed of --growth-base")
    ap.add_argument("--only-growth", action="store_true",
                    help="skip the load and kill -9 phases")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    process = not args.no_process
    results: dict[str, Any] = {"concurrency": args.concurrency, "worker": process}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.only_growth:
            for name, size, total in (
                ("1KB", 1024, args.requests),
                ("100KB", 100 * 1024, args.big_requests),
            ):
                cfg = {"process": process, "max_body_bytes": 1 << 20}
                with Running(tmp / f"{name}.duckdb", [SECRET], KEYS, cfg) as srv:
                    results[name] = asyncio.run(
                        load(srv.url, f"b{name}", size, total, args.concurrency, args.max_seconds)
                    )
            results["kill9"] = crash_check(tmp, args.concurrency, args.kill_after, process)
        if args.growth_rounds and args.growth_base:
            results["growth_on_corpus"] = growth_on_corpus(
                tmp, args.growth_base, args.growth_rounds, args.growth_requests,
                args.concurrency, args.seed,
            )  # fmt: skip
        elif args.growth_rounds:
            results["growth"] = growth(
                tmp, args.growth_rounds, args.growth_requests, args.concurrency
            )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"loopback, concurrency {args.concurrency}, worker {'on' if process else 'off'}")
        if "kill9" in results:
            print(
                f"{'body':>8} {'requests':>9} {'ok':>7} {'req/s':>8} {'MB/s':>7} "
                f"{'p50 ms':>8} {'p99 ms':>8}  other"
            )
            for name in ("1KB", "100KB"):
                r = results[name]
                other = {k: v for k, v in r["codes"].items() if k != 200}
                print(
                    f"{r['size_bytes']:>8} {r['requests']:>9} {r['ok']:>7} "
                    f"{r['requests_per_s']:>8} {r['mb_per_s']:>7} {r['p50_ms']:>8} "
                    f"{r['p99_ms']:>8}  "
                    f"{other or ''}{' errors=' + str(r['errors']) if r['errors'] else ''}"
                )
            k = results["kill9"]
            print(
                f"kill -9 after {args.kill_after}s of load: {k['acknowledged']} acknowledged, "
                f"{k['stored']} stored ({k['stored_unacknowledged']} stored but unacknowledged),"
                f" {k['missing']} acknowledged missing, {k['stored_twice']} stored twice; "
                f"restart healthy in {k['restart_to_healthy_s']}s -> "
                f"{'OK' if k['ok'] else 'FAILED'}"
            )
        rounds = results.get("growth") or results.get("growth_on_corpus", {}).get("rounds")
        if rounds:
            if "growth_on_corpus" in results:
                g = results["growth_on_corpus"]
                print(f"backfilled {g['base']} interactions with `tracewatch run` "
                      f"in {g['backfill_s']} s, then rounds of the same corpus:")  # fmt: skip
            print("processing lag as the database grows (worker every 1 s):")
            print(f"{'round':>6} {'posted ok':>9} {'stored':>8} {'backlog':>8} {'lag s':>7}")
            for g in rounds:
                print(f"{g['round']:>6} {g['posted_ok']:>9} {g['stored_total']:>8} "
                      f"{g['backlog_at_end_of_round']:>8} {g['lag_s']:>7}")  # fmt: skip
    return 0 if results.get("kill9", {"ok": True})["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
