"""Rollup time and peak memory as the corpus grows. Prints figures; asserts nothing.

    python bench/rollup_bench.py [--sizes 10000 50000 200000] [--keep DIR]

For each size a seeded corpus (accounts = size / 80, two weeks, a planted 5-account
campaign) is generated, ingested and summarized with the embedded backend in one child
process; the rollup then runs alone in a fresh child process, so its peak RSS is the
rollup's own (plus the interpreter and DuckDB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare(db: str, n: int, seed: int) -> None:
    from tracewatch.eval.corpus import CorpusSpec, write_corpus
    from tracewatch.monitor.ingest import ingest
    from tracewatch.monitor.store import Store
    from tracewatch.monitor.summarize import summarize_store
    from tracewatch.summarizers.embedded import EmbeddedSummarizer
    from tracewatch.summarizers.redaction import Redactor

    spec = CorpusSpec(
        seed=seed, interactions=n, accounts=max(10, n // 80), spam_campaign_accounts=5
    )
    path = write_corpus(spec, Path(db).parent)["path"]
    with Store(db) as store:
        ingest([path], store)
        asyncio.run(summarize_store(store, EmbeddedSummarizer(Redactor(b"bench"), "rules-v1")))
    Path(path).unlink()


def rollup(db: str) -> None:
    from tracewatch.monitor.rollup import RollupOptions, run_rollup
    from tracewatch.monitor.store import Store
    from tracewatch.summarizers.embedded import EmbeddedSummarizer
    from tracewatch.summarizers.redaction import Redactor

    with Store(db) as store:
        t0 = time.perf_counter()
        report = asyncio.run(
            run_rollup(store, EmbeddedSummarizer(Redactor(b"bench"), "rules-v1"), RollupOptions())
        )
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = asyncio.run(
            run_rollup(store, EmbeddedSummarizer(Redactor(b"bench"), "rules-v1"), RollupOptions())
        )
        rerun = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "rerun_seconds": round(rerun, 2),
                "peak_rss_mb": round(peak_mb),
                "windows": report.windows_rolled,
                "periods": report.periods_rolled,
                "campaigns": report.campaigns_found,
                "partials": report.partials,
                "rerun_windows_rolled": again.windows_rolled,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        what, db, n = args.child
        prepare(db, int(n), args.seed) if what == "prepare" else rollup(db)
        return
    print("size      prepare_s  rollup_s  rerun_s  peak_rss_MB  windows  periods  campaigns")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            db = str(Path(tmp) / "b.duckdb")
            t0 = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--child", "prepare", db, str(n)], check=True)
            prep = time.perf_counter() - t0
            out = subprocess.run(
                [sys.executable, __file__, "--child", "rollup", db, str(n)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{n:<9} {prep:9.1f} {r['seconds']:9.1f} {r['rerun_seconds']:8.2f} "
                f"{r['peak_rss_mb']:12} {r['windows']:8} {r['periods']:8} {r['campaigns']:10}",
                flush=True,
            )


if __name__ == "__main__":
    main()
