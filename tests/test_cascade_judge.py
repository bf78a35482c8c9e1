"""The cascade judge on a real judged database: the model is called for exactly what the
signals screen in, every verdict says which stage decided, and the tokens spent are those
of the screened-in aggregates only. The model is a vLLM backend on a recorded transport (the
real OpenAI SDK; only the HTTP transport is replaced)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import orjson
import pytest

from tracewatch.eval.labelled import LabelledSpec, write_labelled
from tracewatch.monitor.judge import JudgeOptions, read_aggregates, read_verdicts, run_judge
from tracewatch.monitor.store import Store
from tracewatch.rubrics.cascade_judge import CascadeJudge
from tracewatch.rubrics.llm_judge import LLMJudge
from tracewatch.rubrics.loader import load_calibrations, load_rubrics, threshold_for
from tracewatch.rubrics.signal_judge import SignalJudge
from tracewatch.summarizers.redaction import Redactor
from tracewatch.summarizers.vllm_backend import VLLMSummarizer

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]
SPEC = LabelledSpec(seed=6, benign_accounts=25, harmful_per_category=1, lookalikes_per_category=1,
                    single_harm_accounts=2)  # fmt: skip


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("cascade")
    written = write_labelled(SPEC, tmp / "corpus")
    db = tmp / "t.duckdb"
    r = subprocess.run([*TW, "run", written["path"], "--db", str(db)], capture_output=True,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return db


def backend(calls: list[httpx2.Request]) -> VLLMSummarizer:
    def handle(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        answer = {
            "score": 0.9,
            "confidence": 0.8,
            "rationale": "looks harmful",
            "lookalike_considered": "none fit",
            "cited_interaction_ids": [],
            "quotes": [],
        }
        message = {"role": "assistant", "content": orjson.dumps(answer).decode()}
        body = {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050},
        }
        return httpx2.Response(200, json=body)

    return VLLMSummarizer(
        Redactor(b"k" * 32), "m", base_url="http://vllm.test/v1",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handle)),
    )  # fmt: skip


async def test_cascade_calls_the_model_only_for_what_it_screens_in(
    judged: Path, tmp_path: Path
) -> None:
    db = tmp_path / "c.duckdb"
    shutil.copy(judged, db)
    rubrics, cals = load_rubrics(), load_calibrations()
    with Store(db) as store:
        aggs = read_aggregates(store, sorted({k for r in rubrics for k in r.applies_to}))
        # what the screen should let through, worked out here from the signals judge itself
        from tracewatch.monitor.population import with_population

        aggs = with_population(aggs)
        sj, expected, pairs = SignalJudge(), 0, 0
        for a in aggs:
            for r in rubrics:
                if a.kind not in r.applies_to:
                    continue
                pairs += 1
                t = threshold_for(r, "cascade", cals)[0]
                v = sj.judge(a, r, t, "calibrated")
                expected += v.score >= 0.5 * t or (
                    r.level == "interaction" and bool(a.facets.risk_cues)
                )
        calls: list[httpx2.Request] = []
        b = backend(calls)
        rep = await run_judge(store, CascadeJudge(b), JudgeOptions(rejudge=True))
        await b.aclose()
        verdicts = [v for v in read_verdicts(store) if v.judge == "cascade"]
    assert 0 < expected < pairs  # the corpus has both: the test means something
    assert len(calls) == expected and rep.judged == pairs
    by_stage = {s: [v for v in verdicts if v.stage == s] for s in ("signals", "llm")}
    assert len(by_stage["llm"]) == expected and len(by_stage["signals"]) == pairs - expected
    assert all(v.rationale.startswith("[cascade: screened in by") for v in by_stage["llm"])
    assert all(not v.flagged and v.tokens_in == 0 for v in by_stage["signals"])
    assert rep.tokens_in == 1000 * expected  # against 1000 x pairs for the LLM judge alone
    # the model flags what it was asked about (0.9 over every threshold); the screen, nothing
    assert all(v.flagged for v in by_stage["llm"])


async def test_llm_judge_alone_calls_the_model_for_every_pair(judged: Path, tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    shutil.copy(judged, db)
    calls: list[httpx2.Request] = []
    b = backend(calls)
    with Store(db) as store:
        rep = await run_judge(store, LLMJudge(b), JudgeOptions(rejudge=True))
    await b.aclose()
    with Store(db, read_only=True) as store:
        stages = {v.stage for v in read_verdicts(store, "llm")}
    assert len(calls) == rep.judged and stages == {"llm"}


def test_cascade_needs_a_model() -> None:
    r = subprocess.run([*TW, "judge", "--judge", "cascade", "--db", "/nonexistent.duckdb"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2
