"""The in-process vLLM engine (`vllm.LLM`) on a CPU with the tiny random-weight model.

Same contract as the server test: every interaction comes back as a schema-valid Summary or a
failure with its reason, in input order; nothing invalid is stored.
"""

from __future__ import annotations

import os
from pathlib import Path

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

from .tiny_model import build


async def test_offline_engine_summarizes_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The engine core in this process and no graph compilation: faster start-up on 2 cores.
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    model = build(tmp_path / "model")
    backend = VLLMOfflineSummarizer(
        Redactor(b"k"),
        str(model),
        max_tokens=128,
        budget_tokens=200,
        dtype="float32",
        max_model_len=2048,
        enforce_eager=True,
        structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
    )
    path = write_corpus(CorpusSpec(seed=6, interactions=6, accounts=2), tmp_path)["path"]
    with Store(tmp_path / "o.duckdb") as store:
        ingest([path], store)
        inters = store.load_interactions(
            [
                r[0]
                for r in store.con.execute(
                    "SELECT interaction_id FROM interactions ORDER BY 1"
                ).fetchall()
            ]
        )
        results = await backend.summarize_many(inters)
        assert len(results) == len(inters)
        for inter, res in zip(inters, results, strict=True):
            assert isinstance(res, (Summary, SummarizerError))
            if isinstance(res, Summary):
                assert res.content_hash == inter.content_hash and res.backend == "vllm-offline"
            else:
                assert str(res).startswith(("truncated", "invalid output"))
        report = await summarize_store(store, backend)
        assert report.summarized + report.failed == len({i.content_hash for i in inters})
        stored = store.con.execute("SELECT count(*) FROM summaries").fetchone()[0]
        assert stored == report.summarized
    await backend.aclose()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
