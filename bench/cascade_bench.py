"""What the cascade judge spends and what it can find, against each judge alone, through the
Anthropic client on a recorded transport (the real SDK; only the HTTP transport answers).

    python bench/cascade_bench.py [--corpus DIR ...] [--seed 47] [--json]

For our labelled corpus (seed 47) and each `--corpus` folder: ingest, summarize and roll up
with the embedded default once, then judge the same database three ways: `signals`, `llm`
(every aggregate and rubric asked of the model) and `cascade` (only what the signals screen
in). The recorded model answers every question with a score of 0.9, so:
- the tokens are what each judge would send (input tokens are estimated from the request's
  size, 4 characters a token; output is the recorded answer's);
- the cascade's recall and FPR here are its ceilings: it flags exactly what it screened in,
  so no model behind it can find more harmful accounts than this recall, or accuse more
  benign ones than this FPR. The LLM judge alone, asked about everything, flags everything.

Prints figures; asserts nothing. A real model's recall and FPR are in `make bench-llm`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx2
import orjson

from tracewatch.eval.harness import EvalOptions, run_eval
from tracewatch.eval.labelled import LabelledSpec, write_labelled
from tracewatch.rubrics.cascade_judge import CascadeJudge
from tracewatch.rubrics.llm_judge import LLMJudge
from tracewatch.rubrics.signal_judge import SignalJudge
from tracewatch.summarizers.anthropic_backend import AnthropicSummarizer
from tracewatch.summarizers.redaction import Redactor, load_key
from tracewatch.summarizers.registry import create

ANSWER = {
    "score": 0.9,
    "confidence": 0.8,
    "rationale": "recorded answer",
    "lookalike_considered": "none fit",
    "cited_interaction_ids": [],
    "quotes": [],
}


def recorded_anthropic(key: bytes, calls: list[int]) -> AnthropicSummarizer:
    """`calls` gets the tokens of each answer, input and output, as its usage reports them."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        body = orjson.loads(request.content)
        usage = {"input_tokens": len(request.content) // 4, "output_tokens": 60}
        calls.append(usage["input_tokens"] + usage["output_tokens"])
        tool = body["tool_choice"]["name"]
        message = {
            "id": f"msg_{len(calls)}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "content": [
                {"type": "tool_use", "id": f"toolu_{len(calls)}", "name": tool, "input": ANSWER}
            ],
            "usage": usage,
        }
        return httpx2.Response(200, json=message)

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handle))
    return AnthropicSummarizer(Redactor(key), api_key="sk-ant-recorded", http_client=client)


def row(rep: Any, calls: list[int]) -> dict[str, Any]:
    h = rep.hierarchical
    return {
        "recall": h.recall,
        "fpr": h.fpr,
        "look_alike_fpr": h.hard_negative_fpr,
        "precision": h.precision,
        "model_calls": len(calls),
        "judge_tokens": sum(calls),  # exact: the report's figure is rounded per interaction
    }


async def one_corpus(folder: Path, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    key = load_key(str(work / "eval.duckdb"))
    embedded = create("embedded", Redactor(key))  # as `--summarizer embedded` makes it
    out: dict[str, Any] = {}
    for n, (name, make) in enumerate(
        (("signals", lambda b: SignalJudge()), ("llm", LLMJudge), ("cascade", CascadeJudge))
    ):
        calls: list[int] = []
        model = recorded_anthropic(key, calls)
        opts = EvalOptions(corpus=folder, work_dir=work, baseline=False, reuse_db=n > 0)
        rep, _, _ = await run_eval(opts, embedded, make(model))
        await model.aclose()
        out[name] = row(rep, calls)
        out["interactions"] = rep.interactions
    llm = out["llm"]["judge_tokens"] or 1
    out["cascade_tokens_share_of_llm"] = round(out["cascade"]["judge_tokens"] / llm, 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, action="append", default=[], help="labelled folder")
    ap.add_argument("--seed", type=int, default=47, help="our labelled corpus's seed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tracewatch-cascade-") as tmp_s:
        tmp = Path(tmp_s)
        ours = write_labelled(LabelledSpec(seed=args.seed), tmp / "ours")
        folders = {f"ours (seed {args.seed})": Path(ours["labels"]).parent}
        folders |= {str(c): c for c in args.corpus}
        for i, (name, folder) in enumerate(folders.items()):
            results[name] = asyncio.run(one_corpus(folder, tmp / f"work{i}"))
            if not args.json:
                r = results[name]
                print(f"{name}: {r['interactions']} interactions")
                print(f"  {'judge':<8} {'recall':>7} {'FPR':>7} {'look-alike FPR':>15} "
                      f"{'model calls':>12} {'judge tokens':>13}")  # fmt: skip
                for j in ("signals", "llm", "cascade"):
                    x = r[j]
                    print(f"  {j:<8} {x['recall']:>7.3f} {x['fpr']:>7.3f} "
                          f"{x['look_alike_fpr']:>15.3f} {x['model_calls']:>12} "
                          f"{x['judge_tokens']:>13}")  # fmt: skip
                print(f"  cascade tokens / llm tokens: {r['cascade_tokens_share_of_llm']:.2%}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
