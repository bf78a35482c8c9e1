"""Tokens per interaction and per aggregate that the model backends send, on the eval corpus.

What is counted is the exact text our vLLM backend sends (system instructions, the fenced and
redacted trace, in ChatML as Qwen2.5's template wraps it), tokenized with Qwen's own BPE
vocabulary (151,643 tokens; Qwen2.5 uses the same merges). The rollup is run for real over
the corpus with the LLM backends' chunking budget, and every rollup prompt it would send is
counted. Completions cannot be counted without a model answering, so the completion figure
is a stand-in: the embedded backend's summary of the same interaction written out in the
answer schema. The embedded backend itself sends no tokens.

The vocabulary ships in the `dashscope` wheel (no model download):
    pip download --no-deps dashscope==2.0.2 -d /tmp/ds
    unzip -p /tmp/ds/dashscope-2.0.2-*.whl dashscope/resources/qwen.tiktoken > qwen.tiktoken
    python bench/token_counts.py --vocab qwen.tiktoken [--json]
(`make bench-tokens` does all three.) Needs `pip install tiktoken`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
from pathlib import Path
from typing import Any

import orjson

from tracewatch.eval.labelled import LabelledSpec, generate
from tracewatch.monitor.ingest import IngestOptions, ingest
from tracewatch.monitor.rollup import RollupOptions, run_rollup
from tracewatch.monitor.store import Store
from tracewatch.monitor.summarize import summarize_store
from tracewatch.summarizers.embedded import EmbeddedSummarizer
from tracewatch.summarizers.prompt import INSTRUCTIONS, LLMSummaryOutput, user_message
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.rollup_prompt import (
    ROLLUP_INSTRUCTIONS,
    RollupRequest,
    RollupText,
    overhead_tokens,
    rollup_user_message,
)

# Qwen's pre-tokenizer pattern (from its tokenizer definition).
PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def encoder(vocab: Path) -> Any:
    import tiktoken

    ranks = {
        base64.b64decode(tok): int(rank)
        for tok, rank in (ln.split() for ln in vocab.read_text().splitlines() if ln)
    }
    special = {"<|endoftext|>": len(ranks), "<|im_start|>": len(ranks) + 1,
               "<|im_end|>": len(ranks) + 2}  # fmt: skip
    return tiktoken.Encoding("qwen", pat_str=PATTERN, mergeable_ranks=ranks,
                             special_tokens=special)  # fmt: skip


def chat_tokens(enc: Any, system: str, user: str) -> int:
    text = (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    return len(enc.encode(text, allowed_special="all"))


class CountingRollup(EmbeddedSummarizer):
    """The embedded backend, with the LLM backends' chunk budget, counting each rollup call."""

    def __init__(self, redactor: Redactor, enc: Any) -> None:
        super().__init__(redactor, model="rules-v1")
        self.enc = enc
        self.calls: list[tuple[int, int]] = []

    def rollup_overhead_tokens(self) -> int:
        return overhead_tokens()

    async def summarize_rollup(self, request: RollupRequest) -> RollupText:
        out = await super().summarize_rollup(request)
        prompt = chat_tokens(self.enc, ROLLUP_INSTRUCTIONS, rollup_user_message(request))
        answer = orjson.dumps({"summary": out.text, "patterns": []}).decode()
        self.calls.append((prompt, len(self.enc.encode(answer)) + 1))
        return out


def stats(values: list[int]) -> dict[str, float]:
    q = statistics.quantiles(values, n=10)
    return {"mean": round(statistics.fmean(values), 1), "p50": q[4], "p90": q[8],
            "max": max(values)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", type=Path, required=True, help="qwen.tiktoken")
    ap.add_argument("--seed", type=int, default=47)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    enc = encoder(a.vocab)
    redactor = Redactor(b"token-count")
    envs, _ = generate(LabelledSpec(seed=a.seed))
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "eval.jsonl"
        dump.write_bytes(b"\n".join(orjson.dumps(e) for e in envs))
        store = Store(Path(tmp) / "tokens.duckdb")
        ingest([str(dump)], store, IngestOptions())
        embedded = CountingRollup(redactor, enc)
        asyncio.run(summarize_store(store, embedded))
        prompts, answers = [], []
        for batch in store.unsummarized("none", "none", "none"):
            for inter in batch:
                prompts.append(chat_tokens(enc, INSTRUCTIONS, user_message(inter, redactor, 3000)))
                s = asyncio.run(embedded.summarize(inter))
                answer = LLMSummaryOutput(
                    summary=s.text[:2000] or "-",
                    task=(s.facets.task or None) and s.facets.task[:500],
                    transactions=s.facets.transactions[:50],
                    risk_cues=[c[:200] for c in s.facets.risk_cues][:20],
                )
                answers.append(len(enc.encode(answer.model_dump_json())) + 1)
        n_inter = store.con.execute("SELECT count(*) FROM interactions").fetchone()[0]
        rep = asyncio.run(run_rollup(store, embedded, RollupOptions()))
        n_agg = store.con.execute("SELECT count(*) FROM aggregates").fetchone()[0]
        store.close()
    calls = embedded.calls
    result = {
        "corpus": {"seed": a.seed, "interactions": n_inter, "distinct_contents": len(prompts),
                   "aggregates": n_agg, "rollup_calls": len(calls)},
        "per_interaction": {"prompt_tokens": stats(prompts),
                            "completion_tokens_standin": stats(answers)},
        "per_rollup_call": {"prompt_tokens": stats([c[0] for c in calls]),
                            "completion_tokens_standin": stats([c[1] for c in calls])},
        "per_interaction_all_in": {
            "prompt_tokens": round((sum(prompts) + sum(c[0] for c in calls)) / n_inter, 1),
            "completion_tokens": round((sum(answers) + sum(c[1] for c in calls)) / n_inter, 1),
            "model_calls": round((len(prompts) + len(calls)) / n_inter, 3),
        },
        "rollup": {"windows": rep.windows_rolled, "periods": rep.periods_rolled,
                   "campaigns": rep.campaigns_rolled, "extra_levels": rep.extra_levels},
    }  # fmt: skip
    if a.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    c = result["corpus"]
    print(f"eval corpus seed {a.seed}: {c['interactions']} interactions, "
          f"{c['distinct_contents']} distinct contents, {c['aggregates']} aggregates from "
          f"{c['rollup_calls']} rollup calls (Qwen BPE tokens)")  # fmt: skip
    for name in ("per_interaction", "per_rollup_call"):
        for k, v in result[name].items():
            print(f"  {name:<16} {k:<26} mean {v['mean']:>7}  p50 {v['p50']:>7}  "
                  f"p90 {v['p90']:>7}  max {v['max']:>6}")  # fmt: skip
    all_in = result["per_interaction_all_in"]
    print(
        f"  all in, per interaction: {all_in['prompt_tokens']} prompt + "
        f"{all_in['completion_tokens']} completion tokens in {all_in['model_calls']} calls"
    )


if __name__ == "__main__":
    main()
