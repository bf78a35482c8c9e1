"""End-to-end `tracewatch run` on generated corpora, beside a plain orjson parse of the same files.

    python bench/run_bench.py [--sizes 5000,20000,100000] [--seed 11] [--json]

For each size: generate a corpus (Anthropic computer use, OpenAI computer_call and OTLP GenAI
spans, with a planted spam campaign), time `orjson.loads` over every line (the floor: reading
the bytes and nothing else), then run the real CLI, `tracewatch run FILE --db ...` (ingest,
summarize on the embedded default, roll up, judge), in a child process and report its wall
time, interactions/s and peak RSS (`ru_maxrss` of that child from wait4). Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from tracewatch.eval.corpus import CorpusSpec, write_corpus


def orjson_parse(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                orjson.loads(line)
                n += 1
    return n, time.perf_counter() - t0


def tracewatch_run(path: Path, db: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes of one `tracewatch run`."""
    exe = shutil.which("tracewatch", path=str(Path(sys.executable).parent)) or "tracewatch"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "run", str(path), "--db", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"tracewatch run failed ({proc.returncode}):\n{stderr.decode()[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="5000,20000,100000", help="comma-separated corpus sizes")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="tracewatch-bench-") as tmp:
            t0 = time.perf_counter()
            info = write_corpus(
                CorpusSpec(
                    seed=args.seed,
                    interactions=n,
                    accounts=max(10, n // 40),
                    otlp_share=0.15,
                    spam_campaign_accounts=5,
                ),
                Path(tmp),
            )
            gen_s = time.perf_counter() - t0
            path = Path(info["path"])
            parsed, parse_s = orjson_parse(path)
            wall, rss = tracewatch_run(path, Path(tmp) / "bench.duckdb")
            row = {
                "interactions": info["interactions"],
                "accounts": info["accounts"],
                "file_mb": round(info["bytes"] / 1e6, 1),
                "generate_s": round(gen_s, 1),
                "orjson_s": round(parse_s, 2),
                "orjson_per_s": round(parsed / parse_s),
                "run_s": round(wall, 1),
                "run_per_s": round(info["interactions"] / wall),
                "run_peak_rss_mb": round(rss / 2**20),
            }
            rows.append(row)
            if not args.json:
                print(
                    f"{row['interactions']:>7} interactions ({row['file_mb']} MB): "
                    f"orjson {row['orjson_s']} s ({row['orjson_per_s']}/s); "
                    f"tracewatch run {row['run_s']} s ({row['run_per_s']}/s), "
                    f"peak RSS {row['run_peak_rss_mb']} MiB",
                    flush=True,
                )
    if args.json:
        print(json.dumps({"seed": args.seed, "cpus": os.cpu_count(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
