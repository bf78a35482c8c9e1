"""Credentials planted in every way people hand them to an agent, in the formats we read, run
through `tracewatch run`: none may reach a summary, aggregate, verdict, case, report or log."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
from agent_traces import body, comment, envelope, sign_in, visit

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]
T0 = datetime(2026, 10, 5, 9, tzinfo=UTC)
# Other people's addresses and phone numbers, as tools and pages show them.
THIRD_PARTY = [
    "jane.roe@mail.example",
    "+1 415 555 0142",
    "li.wei@corp.example",
    "+44 20 7946 0958",
]

# One secret per way of handing it over; each is unique so a leak names its path.
SECRETS = {
    "pw_in_brackets": "Tr0mbone!91",
    "creds_slash": "Qx7#lantern",
    "login_is": "Vh2$meadow8",
    "user_pass_url": "Pz5%harbor",
    "env_assignment": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "api_key_prefix": "sk-proj-Abc123Def456Ghi789Jkl012",
    "typed_after_login": "Mk4&orchard",
    "tool_password_arg": "Rb9*ferry22",
    "otel_tool_arg": "Gn3^quarry7",
    "bare_pair": "Ls6!pottery",
    "elsewhere_only": "Uq1@vineyard",  # typed in one session, written in words in another
    "responses_pw": "Cw8!lantern3",
    "atif_creds": "Hy4#marathon",
    "langfuse_login_is": "Fj2%bakery77",
    "mini_swe_env": "Zt5^concert9",
    "openhands_v1_typed": "Pq3&theater6",
    "browser_use_typed": "Nd7*recycle4",
}


def _anthropic(account: str, n: int, task: str, steps: list, at: datetime) -> dict:
    return envelope(account, at + timedelta(minutes=n), body(task, steps, "Done, posted it."))


def _chat_login(account: str, at: datetime) -> dict:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {
                "name": "login",
                "arguments": json.dumps(
                    {"username": "deb77", "password": SECRETS["tool_password_arg"]}
                ),
            },
        }
    ]
    return {
        "account_id": account,
        "started_at": at.isoformat(),
        "format": "chat_completions",
        "trace": {
            "messages": [
                {"role": "user", "content": "Sign in to the shop and check my orders."},
                {"role": "assistant", "content": None, "tool_calls": calls},
                {
                    "role": "tool",
                    "tool_call_id": "call_1",
                    "content": f"logged in; support contact {THIRD_PARTY[0]}, {THIRD_PARTY[1]}",
                },
                {"role": "assistant", "content": "You have 2 orders."},
            ]
        },
    }


def _otel(account: str, at: datetime) -> dict:
    ns = int(at.timestamp() * 1e9)
    attrs = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "execute_tool"}},
        {"key": "gen_ai.tool.name", "value": {"stringValue": "sign_in"}},
        {
            "key": "gen_ai.tool.call.result",
            "value": {"stringValue": f"owner {THIRD_PARTY[2]} tel {THIRD_PARTY[3]}"},
        },
        {
            "key": "gen_ai.tool.call.arguments",
            "value": {"stringValue": json.dumps({"user": "zed", "pin": SECRETS["otel_tool_arg"]})},
        },
    ]
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "execute_tool sign_in",
        "startTimeUnixNano": str(ns),
        "endTimeUnixNano": str(ns + 10**9),
        "attributes": attrs,
    }
    return {
        "account_id": account,
        "started_at": at.isoformat(),
        "format": "otlp",
        "trace": {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]},
    }


def _native(account: str, minute: int, fmt: str, trace: object) -> dict:
    at = T0 + timedelta(hours=3, minutes=minute)
    return {"account_id": account, "started_at": at.isoformat(), "format": fmt, "trace": trace}


def _other_formats() -> list[dict]:
    """The same hand-overs in the other formats we read."""
    responses = {
        "input": [{"role": "user", "content": f"Sign in as lee.k (pw {SECRETS['responses_pw']})"}],
        "output": [
            {"type": "computer_call", "call_id": "c1", "action": {"type": "type", "text": "lee.k"}},
            {"type": "computer_call_output", "call_id": "c1", "output": {}},
        ],
    }
    atif = {
        "schema_version": "ATIF-v1.6",
        "session_id": "s1",
        "agent": {"name": "a", "version": "1"},
        "steps": [
            {"step_id": 1, "source": "user", "message": f"creds ana9 / {SECRETS['atif_creds']}"},
            {"step_id": 2, "source": "agent", "message": "Signed in."},
        ],
    }
    langfuse = {
        "trace": {"id": "t1", "input": f"the login is ben.x / {SECRETS['langfuse_login_is']}"},
        "observations": [
            {"id": "o1", "type": "GENERATION", "startTime": "2026-10-05T12:00:00Z", "output": "ok"}
        ],
    }
    mini = {
        "trajectory_format": "mini-swe-agent-1.1",
        "info": {"exit_status": "Submitted"},
        "messages": [
            {"role": "user", "content": f"Set AWS_SECRET_ACCESS_KEY={SECRETS['mini_swe_env']}"},
            {
                "role": "assistant",
                "content": "THOUGHT: write it.\n```bash\necho AWS_SECRET_ACCESS_KEY="
                f"{SECRETS['mini_swe_env']} >> .env\n```",
            },
            {"role": "user", "content": "<returncode>0</returncode><output></output>"},
        ],
    }
    v1 = [
        {
            "kind": "MessageEvent",
            "source": "user",
            "llm_message": {"role": "user", "content": [{"type": "text", "text": "Log in."}]},
        },
        {
            "kind": "ActionEvent",
            "source": "agent",
            "tool_name": "browser_type",
            "tool_call_id": "t1",
            "action": {"kind": "BrowserTypeAction", "index": 3, "text": "mo.r"},
        },
        {
            "kind": "ObservationEvent",
            "source": "environment",
            "tool_call_id": "t1",
            "observation": {"kind": "BrowserObservation", "output": "typed"},
        },
        {
            "kind": "ActionEvent",
            "source": "agent",
            "tool_name": "browser_type",
            "tool_call_id": "t2",
            "action": {
                "kind": "BrowserTypeAction",
                "index": 4,
                "text": SECRETS["openhands_v1_typed"],
            },
        },
        {
            "kind": "ObservationEvent",
            "source": "environment",
            "tool_call_id": "t2",
            "observation": {"kind": "BrowserObservation", "output": "typed"},
        },
    ]
    browser = {
        "history": [
            {
                "model_output": {"action": [{"input_text": {"index": 2, "text": "sam.t"}}]},
                "result": [{"is_done": False}],
                "state": {"url": "https://shop.example/login", "title": "Login"},
            },
            {
                "model_output": {
                    "action": [{"input_text": {"index": 3, "text": SECRETS["browser_use_typed"]}}]
                },
                "result": [{"is_done": True, "extracted_content": "Signed in"}],
                "state": {"url": "https://shop.example/login", "title": "Login"},
            },
        ]
    }
    return [
        _native("b1", 0, "responses", responses),
        _native("b1", 1, "atif", atif),
        _native("b2", 2, "langfuse", langfuse),
        _native("b2", 3, "mini-swe-agent", mini),
        _native("b3", 4, "openhands_v1", v1),
        _native("b3", 5, "browser-use", browser),
    ]


def _corpus() -> list[dict]:
    story = "https://forum.example/t/garden-tips-123"
    say = "Mulch early and water at dawn, it made all the difference for our beds."
    envs = [
        _anthropic(
            "a1",
            0,
            f"Reply to this thread as jdoe42 (pw {SECRETS['pw_in_brackets']})",
            visit(story) + sign_in("jdoe42", SECRETS["pw_in_brackets"]) + comment(say),
            T0,
        ),
        _anthropic(
            "a1",
            1,
            f"creds jdoe42 / {SECRETS['creds_slash']} and post my tip",
            visit(story) + comment(say),
            T0,
        ),
        _anthropic(
            "a2",
            2,
            f"The login is mara.q / {SECRETS['login_is']}; post the tip.",
            visit(story) + comment(say),
            T0,
        ),
        _anthropic(
            "a2",
            3,
            f"Open https://mara:{SECRETS['user_pass_url']}@admin.example/panel and check it.",
            visit("https://admin.example/panel"),
            T0,
        ),
        _anthropic(
            "a3",
            4,
            f"Put AWS_SECRET_ACCESS_KEY={SECRETS['env_assignment']} and "
            f"OPENAI_KEY {SECRETS['api_key_prefix']} into the .env file.",
            [
                (
                    {
                        "action": "type",
                        "text": f"AWS_SECRET_ACCESS_KEY={SECRETS['env_assignment']}",
                    },
                    "ok",
                    None,
                )
            ],
            T0,
        ),
        _anthropic(
            "a3",
            5,
            "Log in to the shop for me.",
            visit("https://shop.example/login") + sign_in("kit.o", SECRETS["typed_after_login"]),
            T0,
        ),
        _anthropic(
            "a4",
            6,
            f"Use ola_b9 / {SECRETS['bare_pair']} on the forum and post.",
            visit(story) + comment(say),
            T0,
        ),
        _anthropic(
            "a4",
            7,
            "Log in to the forum.",
            visit("https://forum.example/login") + sign_in("ola_b9", SECRETS["elsewhere_only"]),
            T0,
        ),
        _anthropic(
            "a4",
            8,
            f"Same as before, my usual one is {SECRETS['elsewhere_only']} so reuse it.",
            visit(story) + comment(say),
            T0 + timedelta(hours=1),
        ),
        _chat_login("a5", T0 + timedelta(minutes=9)),
        _otel("a5", T0 + timedelta(minutes=10)),
        *_other_formats(),
    ]
    return envs


def _everything_written(tmp: Path, db: Path, outputs: list[str]) -> str:
    con = duckdb.connect(str(db), read_only=True)
    parts = list(outputs)
    for sql in (
        "SELECT text || facets::VARCHAR FROM summaries",
        "SELECT text || facets::VARCHAR || links::VARCHAR FROM aggregates",
        "SELECT verdict::VARCHAR FROM verdicts",
        "SELECT rationale || quotes::VARCHAR || signals::VARCHAR FROM cases",
        "SELECT coalesce(note, '') || coalesce(details::VARCHAR, '') FROM case_events",
    ):
        parts += [r[0] for r in con.execute(sql).fetchall()]
    ids = [r[0] for r in con.execute("SELECT interaction_id FROM interactions").fetchall()]
    accounts = [
        r[0] for r in con.execute("SELECT DISTINCT account_id FROM interactions").fetchall()
    ]
    con.close()
    for args in (
        *(["report", "interaction", i] for i in ids),
        *(["report", "account", a] for a in accounts),
        ["report", "overview"],
        ["queue", "list"],
        ["stats"],
    ):
        for fmt in ([], ["--json"]):
            r = subprocess.run([*TW, *args, "--db", str(db), *fmt], capture_output=True, text=True)
            assert r.returncode == 0, (args, r.stderr)
            parts += [r.stdout, r.stderr]
    return "\n".join(parts)


def test_no_planted_credential_reaches_anything_written(tmp_path: Path) -> None:
    src = tmp_path / "planted.jsonl"
    src.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in _corpus()))
    db = tmp_path / "tw.duckdb"
    run = subprocess.run(
        [*TW, "run", str(src), "--db", str(db), "--json"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    ingested = json.loads(run.stdout)["ingest"]
    assert ingested["ingested"] == len(_corpus()), ingested
    assert {
        "openai_responses",
        "atif",
        "langfuse",
        "mini_swe_agent",
        "openhands_v1",
        "browser_use",
        "anthropic",
        "openai_chat",
        "otel_genai",
    } <= set(ingested["by_format"])
    written = _everything_written(tmp_path, db, [run.stdout, run.stderr])
    leaked = {
        name: written[max(0, written.index(v) - 200) : written.index(v) + 20]
        for name, v in SECRETS.items()
        if v in written
    }
    assert not leaked, leaked
    assert not [p for p in THIRD_PARTY if p in written]  # pseudonyms in every format
    # the one said only in words was caught by the last guard, from the session that typed it
    overview = json.loads(
        subprocess.run(
            [*TW, "report", "overview", "--db", str(db), "--json"], capture_output=True, text=True
        ).stdout
    )
    assert sum(overview["secrets_caught"].values()) >= 1


def test_the_same_secret_is_the_same_placeholder_across_interactions(tmp_path: Path) -> None:
    """A credential list shared by two accounts stays evidence after redaction."""
    envs = []
    for n, account in enumerate(("ring-a", "ring-b")):
        for k in range(3):
            envs.append(
                _anthropic(
                    account,
                    n * 3 + k,
                    "Log in to the shop for me.",
                    visit("https://shop.example/login") + sign_in(f"user{k}x", f"Shared#{k}pass9"),
                    T0 + timedelta(days=k),
                )
            )
    src = tmp_path / "shared.jsonl"
    src.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in envs))
    db = tmp_path / "tw.duckdb"
    r = subprocess.run(
        [*TW, "run", str(src), "--db", str(db), "--json"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT i.account_id, s.facets FROM interactions i JOIN summaries s USING (content_hash)"
    ).fetchall()
    con.close()
    by_account: dict[str, set[str]] = {}
    for account, facets in rows:
        ids = json.loads(facets)["identities"]
        by_account.setdefault(account, set()).update(i for i in ids if i.startswith("[PASSWORD:"))
    assert by_account["ring-a"] == by_account["ring-b"] and len(by_account["ring-a"]) == 3


def test_no_credential_of_the_independent_corpus_is_written(tmp_path: Path) -> None:
    """The credentials its author's users hand over (every password-shaped token of the tasks,
    found by a pattern of this test's own, not by the redactor) are in nothing we store."""
    import gzip
    import re

    from conftest import SAMPLES

    corpus = SAMPLES.parent / "eval-dev" / "corpus-a" / "traces.jsonl.gz"
    if not corpus.is_file():
        import pytest

        pytest.skip(f"the development corpus is not at {corpus}")
    planted: set[str] = set()
    with gzip.open(corpus) as fh:
        for line in fh:
            trace = orjson.loads(line)["trace"]
            first = (trace.get("messages") or trace.get("input") or [{}])[0].get("content")
            text = first if isinstance(first, str) else orjson.dumps(first).decode()
            for token in re.findall(r"[^\s,;()\"'<>]+", text):
                v = token.rstrip(".:")
                if (
                    6 <= len(v) <= 24
                    and re.search(r"\d", v)
                    and re.search(r"[A-Za-z]", v)
                    and re.search(r"[!#$%^&*]", v)
                    and "/" not in v
                    and not v.startswith("@")
                    and not re.search(r"@[\w-]+\.\w", v)
                ):
                    planted.add(v)
    assert len(planted) > 300
    db = tmp_path / "a.duckdb"
    r = subprocess.run(
        [*TW, "run", str(corpus), "--db", str(db), "--json"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    written = "\n".join(
        row[0]
        for sql in (
            "SELECT text || facets::VARCHAR FROM summaries",
            "SELECT text || facets::VARCHAR || links::VARCHAR FROM aggregates",
            "SELECT verdict::VARCHAR FROM verdicts",
            "SELECT rationale || quotes::VARCHAR FROM cases",
        )
        for row in con.execute(sql).fetchall()
    )
    con.close()
    assert not sorted(v for v in planted if v in written)
