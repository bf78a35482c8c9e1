"""Ingest throughput beside a plain orjson parse of the same file. Prints figures; asserts nothing.

python bench/ingest_bench.py [--interactions 5000] [--seed 11]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import orjson

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.ingest import ingest
from tracewatch.monitor.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--interactions", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        info = write_corpus(
            CorpusSpec(
                seed=args.seed,
                interactions=args.interactions,
                accounts=max(10, args.interactions // 80),
            ),
            Path(tmp),
        )
        path = Path(info["path"])
        mb = path.stat().st_size / 1e6
        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            n = sum(1 for line in fh if orjson.loads(line))
        parse_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with Store(Path(tmp) / "bench.duckdb") as store:
            rep = ingest([str(path)], store)
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        with Store(Path(tmp) / "bench.duckdb") as store:
            again = ingest([str(path)], store)
        rerun_s = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"corpus: {n} interactions, {mb:.1f} MB (seed {args.seed})")
    print(
        f"orjson parse only : {parse_s:6.2f} s  {n / parse_s:8.0f} interactions/s  "
        f"{mb / parse_s:6.1f} MB/s"
    )
    print(
        f"tracewatch ingest : {ingest_s:6.2f} s  {rep.inserted / ingest_s:8.0f} interactions/s  "
        f"{mb / ingest_s:6.1f} MB/s  ({ingest_s / parse_s:.1f}x the parse)"
    )
    print(
        f"re-ingest (dupes) : {rerun_s:6.2f} s  stored {again.inserted}, skipped {again.duplicates}"
    )
    print(f"peak RSS          : {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
