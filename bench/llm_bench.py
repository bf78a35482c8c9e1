"""The real small model's floor: SmolLM2-135M-Instruct behind vLLM's CPU build, beside the
embedded default, on slices of our labelled corpus and of another author's.

    python bench/llm_bench.py [--accounts 8] [--corpus ../shared/eval-dev/corpus-a] [--json]

Run in .venv-vllm (`make bench-llm`). It converts the model if needed (tests/vllm_real/
real_model.py), starts a vLLM server on 127.0.0.1, then:
- `bench/endpoint_bench.py` against it: share of answers that validate against the summary
  schema, share cut off at max_tokens, tokens/s and latency;
- `tracewatch eval --corpus SLICE` for each slice with the embedded default (signals judge),
  then the model with `--judge signals`, `--judge cascade` and `--judge llm` on one kept
  database (`--keep --reuse`: the model summarizes once): precision, recall, benign FPR and
  the tokens each judge spent.

A slice is the first `--accounts` accounts of each label of a corpus (so it holds harmful,
benign and look-alike accounts), all of their interactions. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "vllm_real"))
from real_model import smollm2  # noqa: E402

from tracewatch.eval.labelled import LabelledSpec, write_labelled  # noqa: E402

GUIDED = '{"backend":"xgrammar","disable_any_whitespace":true}'


def serve(model: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "float32", "--max-model-len", "8192", "--enforce-eager",
           "--structured-outputs-config", GUIDED]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"vLLM exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return proc
        except OSError:
            time.sleep(2)
    sys.exit("vLLM did not start")


def slice_corpus(src: Path, out: Path, per_label: int) -> Path:
    """The first `per_label` accounts of each (label, category) group, with their lines."""
    labels = json.loads((src / "labels.json").read_bytes())
    if isinstance(labels, dict) and isinstance(labels.get("accounts"), list):
        by_id = {a["account_id"]: a for a in labels["accounts"]}
        key = lambda a: (a.get("harmful"), a.get("lookalike_of") is not None)  # noqa: E731
    else:
        by_id = labels
        key = lambda a: (a.get("label"), a.get("hard_negative", False))  # noqa: E731
    groups: dict[Any, list[str]] = {}
    for acct in sorted(by_id):
        groups.setdefault(key(by_id[acct]), []).append(acct)
    keep = {a for accts in groups.values() for a in accts[:per_label]}
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for f in sorted(src.glob("*.jsonl*")):
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rb") as fh:
            lines += [ln for ln in fh if json.loads(ln).get("account_id") in keep]
    (out / "traces.jsonl").write_bytes(b"".join(lines))
    if "accounts" in labels and isinstance(labels["accounts"], list):
        kept = {"accounts": [by_id[a] for a in sorted(keep)]}
    else:
        kept = {a: by_id[a] for a in sorted(keep)}
    (out / "labels.json").write_text(json.dumps(kept))
    return out


def tracewatch(*args: str) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "tracewatch"
    # a request on 2 CPUs waits behind the others in the batch: a timeout would ask it again
    env = {**os.environ, "TRACEWATCH_VLLM_TIMEOUT": "900"}
    r = subprocess.run([str(exe), *args, "--json"], capture_output=True, timeout=7200, env=env)
    if r.returncode != 0:
        sys.exit(f"tracewatch {' '.join(args)} failed:\n{r.stderr.decode()[-2000:]}")
    return json.loads(r.stdout)


def figures(rep: dict[str, Any]) -> dict[str, Any]:
    h = rep["hierarchical"]

    def r3(v: float | None) -> float | None:  # None where the slice has no such account
        return None if v is None else round(v, 3)

    return {
        "interactions": rep["interactions"],
        "accounts": rep["accounts"],
        "harmful": (h.get("harmful_aggregate_only") or 0) + (h.get("harmful_single") or 0),
        "precision": r3(h["precision"]),
        "recall": r3(h["recall"]),
        "single_interaction_recall": r3(h.get("single_interaction_recall")),
        "fpr": r3(h["fpr"]),
        "cost": rep.get("cost"),
        "seconds": rep.get("seconds"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--accounts", type=int, default=2, help="accounts per label group")
    ap.add_argument("--corpus", type=Path, action="append", default=[], help="labelled folder")
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument(
        "--judges",
        default="signals,cascade,llm",
        help="judges to run with the model, in order (the first summarizes)",
    )
    ap.add_argument("--no-endpoint", action="store_true", help="skip the endpoint figures")
    ap.add_argument("--no-ours", action="store_true", help="only the --corpus slices")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {"cpus": os.cpu_count(), "model": "SmolLM2-135M-Instruct Q4_1 (fp32)"}
    with tempfile.TemporaryDirectory(prefix="tracewatch-llm-") as tmp_s:
        tmp = Path(tmp_s)
        slices = {}
        if not args.no_ours:
            ours = write_labelled(LabelledSpec(seed=47), tmp / "ours")
            src = Path(ours["labels"]).parent
            slices["ours (seed 47)"] = slice_corpus(src, tmp / "s0", args.accounts)
        for n, c in enumerate(args.corpus, 1):
            slices[str(c)] = slice_corpus(c, tmp / f"s{n}", args.accounts)
        proc = serve(smollm2(), args.port, tmp / "vllm.log")
        url = f"http://127.0.0.1:{args.port}/v1"
        model = ["--summarizer", "vllm", "--vllm-url", url, "--model", "smollm2"]
        try:
            bench = ROOT / "bench" / "endpoint_bench.py"
            if not args.no_endpoint:
                r = subprocess.run([sys.executable, str(bench), "--base-url", url, "--model",
                                    "smollm2", "--requests", "24", "--concurrency", "8", "--json"],
                                   capture_output=True, timeout=3600)  # fmt: skip
                out["endpoint"] = json.loads(r.stdout) if r.returncode == 0 else r.stderr.decode()
                if not args.json:
                    print(json.dumps({"endpoint": out["endpoint"]}, indent=1), flush=True)
            out["slices"] = {}
            for n, (name, folder) in enumerate(slices.items()):
                row = {"embedded + signals": figures(tracewatch("eval", "--corpus", str(folder)))}
                if not args.json:
                    print(json.dumps({name: row}), flush=True)
                # one kept database per slice: the model summarizes and rolls up once, and each
                # judge after the first reads those (the baseline would ask the model about
                # every interaction again, so it is left out)
                keep = ["--keep", str(tmp / f"work{n}"), "--no-baseline", "--no-agentdojo"]
                for i, judge in enumerate(args.judges.split(",")):
                    reuse = ["--reuse"] if i else []
                    rep = tracewatch("eval", "--corpus", str(folder), *model, *keep, *reuse,
                                     "--judge", judge)  # fmt: skip
                    row[f"smollm2 + {judge}"] = figures(rep)
                    if not args.json:  # as it goes: a slice takes an hour on 2 cores
                        print(json.dumps({name: {judge: row[f"smollm2 + {judge}"]}}), flush=True)
                out["slices"][name] = row
                if not args.json:
                    print(json.dumps({name: row}, indent=1), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
