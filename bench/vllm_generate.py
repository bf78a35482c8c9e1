"""vLLM's throughput for tracewatch's prompt shapes on one GPU, Qwen2.5-7B-shaped model.

Runs where vLLM and a CUDA GPU are present (not in CI). Nothing is downloaded: the weights are
random (`load_format="dummy"`) and there is no tokenizer (prompts are token ids), which changes
what the model says but not what it costs. Every request is made to produce exactly the
completion length (`ignore_eos`). Each prompt starts with the same `shared` tokens, as ours
start with the same fixed instructions (357 Qwen tokens for a summary, 246 for a rollup,
counted with bench/token_counts.py's vocabulary), so vLLM's prefix cache sees what it would
see in production; the rest of each prompt is random.

    python bench/vllm_generate.py [--requests 2000] [--json]
    python bench/vllm_generate.py --smoke     # a 2-layer model, 32 requests: checks the
                                              # script runs (vLLM's CPU build will do)

Carrying vLLM to a machine without an index: vllm 0.26.0 pins torch 2.11.0, the build on the
lent GPU machines (+cu130); it needs, beyond their image, apache-tvm-ffi, cachetools, cbor2,
httpx2, llguidance, msgspec, openai, openai-harmony, opentelemetry-api/-sdk/-semantic-
conventions, partial-json-parser, pybase64, pydantic (+pydantic-core, annotated-types,
typing-inspection), pyzmq, sniffio and xgrammar (found by importing its engine, worker,
Qwen2 model, attention and structured-output modules beside that torch).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

# Qwen2.5-7B-Instruct's published architecture.
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}
# name, prompt tokens (mean, eval corpus), completion tokens (stand-in), shared prefix tokens
SHAPES = [("interaction summary", 752, 133, 357), ("rollup", 952, 95, 246)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per shape")
    ap.add_argument("--max-num-seqs", type=int, default=256)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny model, few requests, float32")
    a = ap.parse_args()
    config = dict(QWEN25_7B)
    dtype = "bfloat16"
    if a.smoke:
        config.update(
            hidden_size=256,
            intermediate_size=512,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            torch_dtype="float32",
        )
        a.requests, dtype = 32, "float32"

    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout is for --json
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    folder = Path(tempfile.mkdtemp(prefix="qwen25-7b-shape-"))
    (folder / "config.json").write_text(json.dumps(config))
    t = time.perf_counter()
    llm = LLM(
        model=str(folder),
        load_format="dummy",
        skip_tokenizer_init=True,
        dtype=dtype,
        max_model_len=4096,
        max_num_seqs=a.max_num_seqs,
        enable_prefix_caching=True,
        seed=0,
        **({} if a.smoke else {"gpu_memory_utilization": 0.9}),
    )
    startup = time.perf_counter() - t
    rng = random.Random(0)
    results = []
    for name, prompt, completion, shared in SHAPES:
        prefix = [rng.randrange(1000, 150000) for _ in range(shared)]

        def ids(n: int) -> list[int]:
            return [rng.randrange(1000, 150000) for _ in range(n)]

        prompts = [
            TokensPrompt(prompt_token_ids=prefix + ids(prompt - shared)) for _ in range(a.requests)
        ]
        params = SamplingParams(
            temperature=0, max_tokens=completion, min_tokens=completion, ignore_eos=True,
            detokenize=False,
        )  # fmt: skip
        llm.generate(prompts[:64], params, use_tqdm=False)  # warm-up
        t = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - t
        made = sum(len(o.outputs[0].token_ids) for o in outs)
        assert made == completion * a.requests, (made, completion * a.requests)
        results.append(
            {
                "workload": name,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "shared_prefix_tokens": shared,
                "requests": a.requests,
                "seconds": round(seconds, 2),
                "requests_per_s": round(a.requests / seconds, 1),
                "prompt_tok_per_s": round(prompt * a.requests / seconds),
                "completion_tok_per_s": round(made / seconds),
            }
        )
    import torch
    import vllm

    report = {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU",
        "model": "smoke (2 layers)" if a.smoke else "Qwen2.5-7B shape",
        "vllm": vllm.__version__,
        "torch": torch.__version__,
        "startup_s": round(startup, 1),
        "max_num_seqs": a.max_num_seqs,
        "results": results,
    }
    if a.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['gpu']}, vLLM {report['vllm']}, startup {report['startup_s']} s")
    for r in results:
        print(
            f"{r['workload']:20} {r['prompt_tokens']} in / {r['completion_tokens']} out: "
            f"{r['requests_per_s']} req/s, {r['prompt_tok_per_s']} prompt tok/s, "
            f"{r['completion_tok_per_s']} completion tok/s ({r['seconds']} s)"
        )


if __name__ == "__main__":
    main()
