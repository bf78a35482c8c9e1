"""Scale over time: what a first run, a rerun with nothing new and a tick of new data cost.

    python bench/scale_bench.py [--sizes 5000,20000,100000] [--tick 1000] [--corpus FILE] [--json]

For each size, a corpus of `tracewatch corpus generate` (or the given `--corpus` files) is
split by time: everything but the latest `--tick` interactions is the base, those are the
tick. Then, each in a child process of the real CLI:

- the plain parse: `orjson.loads` of every line of the base (the floor);
- `tracewatch run BASE --db NEW` (ingest, summarize, roll up, judge): wall time, its ratio to
  the parse, peak RSS (`ru_maxrss` of that child, from wait4);
- the same `tracewatch run BASE` again, with nothing new (the no-op rerun), as a share of
  the first run;
- `tracewatch run TICK` on top (what a receiver's tick or a day's new dump costs), as a share
  of the first run.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

import orjson
from run_bench import tracewatch_run  # the same child-process run and its peak RSS

from tracewatch.eval.corpus import CorpusSpec, write_corpus


def read_lines(paths: list[Path]) -> list[bytes]:
    lines: list[bytes] = []
    for p in paths:
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rb") as fh:
            lines.extend(ln for ln in fh if ln.strip())
    return lines


def split(lines: list[bytes], tick: int) -> tuple[list[bytes], list[bytes]]:
    """Base and tick: the tick is the latest `tick` envelopes by their time."""

    def when(line: bytes) -> str:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            return ""
        return str(doc.get("started_at") or "") if isinstance(doc, dict) else ""

    order = sorted(range(len(lines)), key=lambda i: when(lines[i]))
    cut = max(0, len(order) - tick)
    keep = set(order[:cut])
    return [lines[i] for i in sorted(keep)], [lines[i] for i in order[cut:]]


def parse_s(path: Path) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        with open(path, "rb") as fh:
            for line in fh:
                if line.strip():
                    orjson.loads(line)
        best = min(best, time.perf_counter() - t0)
    return best


def measure(lines: list[bytes], tick: int, tmp: Path) -> dict[str, float | int]:
    base, new = split(lines, tick)
    base_path, tick_path = tmp / "base.jsonl", tmp / "tick.jsonl"
    base_path.write_bytes(b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in base))
    tick_path.write_bytes(b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in new))
    db = tmp / "scale.duckdb"
    p = parse_s(base_path)
    first, rss = tracewatch_run(base_path, db)
    again, rss_again = tracewatch_run(base_path, db)
    ticked, rss_tick = tracewatch_run(tick_path, db)
    return {
        "interactions": len(base),
        "tick": len(new),
        "file_mb": round(base_path.stat().st_size / 1e6, 1),
        "parse_s": round(p, 3),
        "run_s": round(first, 1),
        "run_over_parse": round(first / p, 1),
        "peak_rss_mb": round(rss / 2**20),
        "noop_rerun_s": round(again, 2),
        "noop_share": round(again / first, 3),
        "tick_s": round(ticked, 2),
        "tick_share": round(ticked / first, 3),
        "tick_peak_rss_mb": round(max(rss_again, rss_tick) / 2**20),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="5000,20000,100000", help="comma-separated corpus sizes")
    ap.add_argument("--tick", type=int, default=1000, help="new interactions in the tick")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--corpus", type=Path, action="append", default=[], help="JSONL(.gz) files")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = ap.parse_args()
    rows = []
    jobs: list[tuple[str, list[bytes] | int]] = (
        [(", ".join(map(str, args.corpus)), read_lines(args.corpus))]
        if args.corpus
        else [(f"generated seed {args.seed}", int(s)) for s in args.sizes.split(",") if s]
    )
    for name, job in jobs:
        with tempfile.TemporaryDirectory(prefix="tracewatch-scale-") as tmp:
            if isinstance(job, int):
                info = write_corpus(
                    CorpusSpec(
                        seed=args.seed,
                        interactions=job + args.tick,
                        accounts=max(10, job // 40),
                        otlp_share=0.15,
                        spam_campaign_accounts=5,
                    ),
                    Path(tmp) / "gen",
                )
                lines = read_lines([Path(info["path"])])
            else:
                lines = job
            row = {"corpus": name, **measure(lines, args.tick, Path(tmp))}
        rows.append(row)
        if not args.json:
            print(
                f"{row['corpus']}: {row['interactions']} interactions ({row['file_mb']} MB): "
                f"parse {row['parse_s']} s; run {row['run_s']} s ({row['run_over_parse']}x), "
                f"peak RSS {row['peak_rss_mb']} MiB; no-op rerun {row['noop_rerun_s']} s "
                f"({row['noop_share']:.1%}); tick of {row['tick']}: {row['tick_s']} s "
                f"({row['tick_share']:.1%})",
                flush=True,
            )
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
