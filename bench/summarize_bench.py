"""Embedded summarizer throughput on a generated corpus. Prints figures; asserts nothing.

    python bench/summarize_bench.py [--interactions 5000]

Measures the summarizer alone (interactions already loaded) and the whole `summarize` pass
over the store (load from DuckDB, summarize, write the cache).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.ingest import ingest
from tracewatch.monitor.store import Store
from tracewatch.monitor.summarize import summarize_store
from tracewatch.summarizers.embedded import EmbeddedSummarizer
from tracewatch.summarizers.redaction import Redactor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interactions", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    summarizer = EmbeddedSummarizer(Redactor(b"bench"), "rules-v1")
    with tempfile.TemporaryDirectory() as tmp:
        spec = CorpusSpec(
            seed=args.seed,
            interactions=args.interactions,
            accounts=max(10, args.interactions // 80),
        )
        path = write_corpus(spec, Path(tmp))["path"]
        with Store(Path(tmp) / "b.duckdb") as store:
            ingest([path], store)
            ids = [
                r[0]
                for r in store.con.execute("SELECT interaction_id FROM interactions").fetchall()
            ]
            t0 = time.perf_counter()
            inters = store.load_interactions(ids)
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for inter in inters:
                summarizer.summarize_sync(inter)
            alone_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = asyncio.run(summarize_store(store, summarizer))
            pass_s = time.perf_counter() - t0
    n = len(inters)
    print(f"corpus: {n} interactions (seed {args.seed})")
    print(f"load from DuckDB     : {load_s:6.2f} s  {n / load_s:8.0f} interactions/s")
    print(f"embedded summarizer  : {alone_s:6.2f} s  {n / alone_s:8.0f} interactions/s (one core)")
    print(
        f"summarize pass (all) : {pass_s:6.2f} s  {report.summarized / pass_s:8.0f} "
        f"interactions/s  ({report.summarized} summarized, {report.cached} cached)"
    )


if __name__ == "__main__":
    main()
