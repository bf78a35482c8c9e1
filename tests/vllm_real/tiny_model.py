"""Build a tiny random-weight Llama that vLLM can serve on a CPU, from nothing downloaded.

Its answers are random, but schema-shaped under guided decoding, and sometimes cut off at
max_tokens: exactly what an integration test of our client against a real server needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build(out: Path, fixed: bool = False) -> Path:
    """The tiny model; `fixed` makes its greedy answer the same whatever the prompt.

    A fixed model's residual stream is its token embedding alone (attention and MLP outputs
    zeroed), every embedding carries one constant dimension, and the final norm keeps only
    that dimension: the logits are then one fixed score per token. Scores favour `"`, then `}`,
    then `A`, so under the summary's JSON schema greedy decoding writes `{"summary":"A"}`, a
    valid answer, on every engine and batch shape alike. Random weights would give random
    text that almost never closes its JSON before max_tokens.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    corpus = [
        '{"summary": "The agent posted a reply.", "task": null, "transactions": [], '
        '"risk_cues": [], "refused": false}',
        "The user asked the agent to log in, sign up, buy an item, post a review or like a post.",
        "<|system|> <|user|> <|assistant|> UNTRUSTED_TRACE_DATA computer_action navigation",
    ] * 50
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    if fixed:
        _fix(model, fast)
    model.save_pretrained(out, safe_serialization=True)
    return out


def _fix(model: object, tok: object) -> None:
    import torch

    with torch.no_grad():
        inner = model.model  # type: ignore[attr-defined]
        for layer in inner.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        inner.embed_tokens.weight.mul_(0.01)
        inner.embed_tokens.weight[:, 0] = 1.0
        inner.norm.weight.zero_()
        inner.norm.weight[0] = 1.0
        head = model.lm_head.weight  # type: ignore[attr-defined]
        head.zero_()
        for text, score in (('"', 30.0), ("A", 20.0), ("}", 10.0)):
            head[tok.convert_tokens_to_ids(text), 0] = score  # type: ignore[attr-defined]


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
