"""Generation throughput of a Qwen2.5-7B-shaped model on one GPU for our prompt shapes.

Runs where PyTorch and transformers are installed and a CUDA GPU is present (not in CI).
The weights are random (nothing is downloaded), which changes what the model says but not
what it costs: the work per token depends on the architecture and the lengths alone, and
every request is made to produce exactly the completion length asked for. Batches are
static (Hugging Face `generate`, no paged attention or CUDA graphs), so a serving engine
such as vLLM does at least this well on the same GPU; read the figures as a floor.

    python bench/gpu_generate.py --prompt 752 --completion 133 --batches 64,128,256 [--json]
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", type=int, default=752, help="prompt tokens per request")
    ap.add_argument("--completion", type=int, default=133, help="completion tokens per request")
    ap.add_argument("--batches", default="64,128,256")
    ap.add_argument("--label", default="interaction summary")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    # Qwen2.5-7B-Instruct's published architecture.
    config = Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM._from_config(config, dtype=torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    results = []
    for b in (int(x) for x in a.batches.split(",")):
        ids = torch.randint(1000, 150000, (b, a.prompt), device="cuda")
        mask = torch.ones_like(ids)
        kw = dict(
            attention_mask=mask,
            max_new_tokens=a.completion,
            min_new_tokens=a.completion,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )
        with torch.inference_mode():
            warm = {**kw, "attention_mask": mask[:8], "max_new_tokens": 4, "min_new_tokens": 4}
            model.generate(ids[:8], **warm)
            torch.cuda.synchronize()
            t = time.perf_counter()
            out = model.generate(ids, **kw)
            torch.cuda.synchronize()
            wall = time.perf_counter() - t
        made = out.shape[1] - a.prompt
        results.append(
            {
                "workload": a.label,
                "batch": b,
                "prompt_tokens": a.prompt,
                "completion_tokens": made,
                "seconds": round(wall, 2),
                "requests_per_s": round(b / wall, 1),
                "prompt_tokens_per_s": round(b * a.prompt / wall),
                "completion_tokens_per_s": round(b * made / wall),
                "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    summary = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "parameters_b": round(params / 1e9, 2),
        "results": results,
    }
    print(json.dumps(summary, indent=2) if a.json else json.dumps(summary))


if __name__ == "__main__":
    main()
