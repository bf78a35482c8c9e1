"""`--engine ray --summarizer vllm-offline`: Ray Data's vLLM engine processor, for real.

The same CLI run twice over one corpus: in one process with a `vllm.LLM` engine, and on a local
Ray where `ray.data.llm` runs the chat template, the tokenizer and the engine on a worker
(vLLM's CPU build here, `--vllm-device cpu`; on a cluster the same stage takes one GPU per
engine). The model is the tiny one with fixed scores, so greedy decoding answers the same
valid JSON on every engine and batch shape, and the two databases must match row for row:
same prompts (same token counts), same parsing, same summaries, aggregates, verdicts, cases.

Runs in `.venv-vllm` (make test); skips where vLLM or Ray Data is missing.
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
pytest.importorskip("ray.data.llm", reason="Ray Data is missing: pip install 'tracewatch[ray]'")

from db_rows import TABLES, rows

from tracewatch.eval.corpus import CorpusSpec, generate

from .tiny_model import build

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]
# Eager mode and an in-process engine core: the same engine, about a minute less start-up
# per run on 2 cores (no graph compilation, no extra process importing torch).
ENGINE_ARGS = '{"dtype": "float32", "max_model_len": 4096, "enforce_eager": true}'


def tw(*args: str, cwd: Path) -> dict:
    env = {
        **os.environ,
        "TRACEWATCH_REDACTION_KEY": "equivalence-test-key",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
    }
    r = subprocess.run([*TW, *args, "--json"], capture_output=True, timeout=900, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr.decode()[-4000:]
    return orjson.loads(r.stdout)


def test_vllm_engine_on_ray_gives_the_same_database(tmp_path: Path) -> None:
    model = build(tmp_path / "model", fixed=True)
    envs = generate(
        CorpusSpec(seed=12, interactions=30, accounts=5, days=2, spam_campaign_accounts=3)
    )
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    half = len(envs) // 2
    for name, part in (("a.jsonl", envs[:half]), ("b.jsonl", envs[half:])):
        (dumps / name).write_bytes(b"\n".join(orjson.dumps(e) for e in part) + b"\n")
    common = ["--summarizer", "vllm-offline", "--model", str(model)]
    common += ["--vllm-engine-args", ENGINE_ARGS]

    local = tw("run", str(dumps), "--db", str(tmp_path / "local.duckdb"), *common, cwd=tmp_path)
    out = tmp_path / "ray-out"
    ray = tw(
        "run", str(dumps), "--db", str(tmp_path / "ray.duckdb"), *common, "--engine", "ray",
        "--workers", "1", "--vllm-device", "cpu", "--output", str(out), cwd=tmp_path,
    )  # fmt: skip

    assert local["summarize"]["summarized"] > 0 and local["summarize"]["failed"] == 0
    for key in ("summarized", "failed", "tokens_in", "tokens_out"):
        assert ray["summarize"][key] == local["summarize"][key], key
    con = duckdb.connect(str(tmp_path / "ray.duckdb"), read_only=True)
    texts = con.execute("SELECT DISTINCT backend, text FROM summaries").fetchall()
    con.close()
    assert texts == [("vllm-offline", "A")]  # the engine's answer, not a template
    expected, got = rows(tmp_path / "local.duckdb"), rows(tmp_path / "ray.duckdb")
    for table in TABLES:
        assert got[table] == expected[table], f"{table} differs between the engines"
    assert expected["cases"], "the planted campaign must open a case"
