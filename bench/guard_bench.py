"""The last guard's scan over what a database already holds, as a write would check it.

    python bench/guard_bench.py --db tracewatch.duckdb [--limit 10000]

Reads every aggregate's facets and up to `--limit` summaries' facets, then times
`Guard.clean_json` over all of them twice: with a fresh guard (every distinct token is
fingerprinted once, what a new process pays) and again (known-clean tokens skipped). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time

from tracewatch.monitor.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--limit", type=int, default=10000, help="summaries to read")
    args = ap.parse_args()
    with Store(args.db, read_only=True) as store:
        docs = [r[0] for r in store.con.execute("SELECT facets FROM aggregates").fetchall()]
        docs += [
            r[0]
            for r in store.con.execute(
                "SELECT facets FROM summaries LIMIT ?", [args.limit]
            ).fetchall()
        ]
        guard = store.guard
        passes = []
        for _ in range(2):
            t0 = time.perf_counter()
            cleaned = [guard.clean_json(d, "bench") for d in docs]
            passes.append(round(time.perf_counter() - t0, 3))
    print(
        json.dumps(
            {
                "documents": len(docs),
                "characters": sum(map(len, docs)),
                "marks": len(guard._marks),
                "changed": sum(a != b for a, b in zip(docs, cleaned, strict=True)),
                "fresh_guard_s": passes[0],
                "second_pass_s": passes[1],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
