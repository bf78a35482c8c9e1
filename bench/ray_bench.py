"""Throughput of `tracewatch run` on one process and on Ray with 1 and 2 workers, one corpus.

Each run is a fresh database and (for Ray) a fresh output folder, through the real CLI, so
the figures include what a user waits for: Ray's start, every stage, the final write and the
judge. The corpus is cut into several files so the adapt stage has inputs to spread.

    python bench/ray_bench.py [--interactions 3000] [--files 6] [--json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from tracewatch.eval.corpus import CorpusSpec, generate

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


def corpus(folder: Path, n: int, files: int) -> None:
    lines = [orjson.dumps(e) for e in generate(CorpusSpec(seed=47, interactions=n, accounts=60,
                                                          spam_campaign_accounts=6))]  # fmt: skip
    folder.mkdir(parents=True)
    per = -(-len(lines) // files)
    for k in range(files):
        (folder / f"part-{k:02d}.jsonl").write_bytes(b"\n".join(lines[k * per : (k + 1) * per]))


def run(args: list[str], cwd: Path) -> tuple[float, dict]:
    env = {**os.environ, "TRACEWATCH_REDACTION_KEY": "bench"}
    t = time.perf_counter()
    r = subprocess.run([*TW, *args, "--json"], capture_output=True, cwd=cwd, env=env)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(r.stderr.decode()[-2000:])
    return wall, orjson.loads(r.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interactions", type=int, default=3000)
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus(root / "dumps", a.interactions, a.files)
        plans = [
            ("single process", ["run", "dumps", "--db", "local.duckdb"]),
            *(
                (f"ray, {w} worker{'s' if w > 1 else ''}",
                 ["run", "dumps", "--db", f"ray{w}.duckdb", "--engine", "ray",
                  "--workers", str(w), "--output", f"out{w}"])
                for w in (1, 2)
            ),
        ]  # fmt: skip
        for name, args in plans:
            wall, rep = run(args, root)
            n = rep["ingest"]["interactions"]
            results.append(
                {
                    "engine": name,
                    "interactions": n,
                    "seconds": round(wall, 1),
                    "per_second": round(n / wall, 1),
                    "stages": rep.get("seconds", {}),
                    "cases": rep["judge"]["queue"],
                }
            )
            print(f"{name}: {n} interactions in {wall:.1f} s", file=sys.stderr)
    if a.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    print(f"{'engine':<16} {'interactions':>12} {'seconds':>8} {'per second':>11}  stages (s)")
    for r in results:
        stages = ", ".join(f"{k} {v}" for k, v in r["stages"].items()) or "-"
        print(
            f"{r['engine']:<16} {r['interactions']:>12} {r['seconds']:>8} "
            f"{r['per_second']:>11}  {stages}"
        )


if __name__ == "__main__":
    main()
