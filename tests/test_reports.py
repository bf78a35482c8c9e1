"""Reviewer reports as reviewers run them: the real CLI over a real database built by `run`.

Each report is drawn at 80 and 160 columns; the checks are on what a reviewer needs to see
(ids, scores, evidence rows, members, counts), read against the database itself, not on the
exact drawing, so a layout change does not need a snapshot update but a lost row fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from tracewatch.eval.corpus import CorpusSpec, write_corpus
from tracewatch.monitor.store import Store

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def tw(*args: str, columns: int = 80, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    e.update(COLUMNS=str(columns), **env)
    return subprocess.run([*TW, *args], capture_output=True, text=True, timeout=120, env=e)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A corpus with a planted 4-account spam campaign, run end to end; one case decided."""
    root = tmp_path_factory.mktemp("reports")
    spec = CorpusSpec(seed=5, interactions=300, accounts=10, spam_campaign_accounts=4)
    corpus = write_corpus(spec, root / "corpus")["path"]
    path = str(root / "tw.duckdb")
    r = tw("run", str(corpus), "--db", path)
    assert r.returncode == 0, r.stderr
    cases = orjson.loads(tw("queue", "list", "--db", path, "--json").stdout)
    account_case = next(c for c in cases if c["subject_type"] == "account")
    for args in (
        ("claim", account_case["case_id"], "--reviewer", "dana"),
        ("resolve", account_case["case_id"], "--action", "suspend", "--note", "spam ring"),
    ):
        assert tw("queue", *args, "--db", path).returncode == 0
    return path


def q(db: str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def fits(text: str, columns: int) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > columns]
    assert not too_wide, f"{len(too_wide)} line(s) wider than {columns}: {too_wide[:2]}"


def squash(text: str) -> str:
    """Text with folding undone, so an id broken over two lines is still found."""
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("columns", [80, 160])
def test_case_report_shows_verdict_evidence_and_members(db: str, columns: int) -> None:
    case_id, accounts, evidence, score, rubric = q(
        db,
        "SELECT case_id, accounts, evidence, score, rubric_id FROM cases"
        " WHERE subject_type = 'campaign' ORDER BY priority DESC LIMIT 1",
    )[0]
    r = tw("report", "case", case_id[:7], "--db", db, columns=columns)
    assert r.returncode == 0, r.stderr
    fits(r.stdout, columns)
    flat = squash(r.stdout)
    for needle in (case_id, rubric, f"{score:.2f}", "signals", "rules-v1", *accounts, *evidence):
        assert squash(needle) in flat, needle
    for section in ("why", "evidence", "activity per hour", "near-duplicate", "members"):
        assert section in r.stdout
    # every evidence row carries its time and an excerpt from the summary of that interaction
    data = orjson.loads(tw("report", "case", case_id, "--db", db, "--json").stdout)
    assert {e["interaction_id"] for e in data["evidence"]} == set(evidence)
    times = [e["at"] for e in data["evidence"]]
    assert times == sorted(times)
    assert all(e["at"] and e["excerpt"] for e in data["evidence"])
    assert {m["account"] for m in data["members"]} >= set(accounts)
    assert data["timeline"]["total"] == data["interactions"] > 0
    assert data["duplicate_groups"][0]["copies"] >= 2
    # narrative ties are one row that names its pairs, not a row per pair
    narrative = [x for x in data["links"] if x["kind"] == "narrative"]
    assert len(narrative) <= 1
    if narrative:
        assert " & " in narrative[0]["key"] and "pair(s)" in narrative[0]["key"]


def test_case_top_unknown_and_prefix(db: str) -> None:
    top = q(
        db,
        "SELECT case_id FROM cases WHERE status IN ('open', 'in_review')"
        " ORDER BY priority DESC, case_id LIMIT 1",
    )[0][0]
    r = tw("report", "case", "--top", "--db", db, "--json")
    assert r.returncode == 0 and orjson.loads(r.stdout)["case_id"] == top
    bad = tw("report", "case", "C-nope", "--db", db)
    assert bad.returncode == 2 and "no case 'C-nope'" in bad.stderr
    amb = tw("report", "case", "C-", "--db", db)
    assert amb.returncode == 2 and "matches" in amb.stderr


@pytest.mark.parametrize("columns", [80, 160])
def test_overview_counts_match_the_queue(db: str, columns: int) -> None:
    r = tw("report", "overview", "--db", db, columns=columns)
    assert r.returncode == 0, r.stderr
    fits(r.stdout, columns)
    data = orjson.loads(tw("report", "overview", "--db", db, "--json").stdout)
    by = {
        (rubric, status): n
        for rubric, status, n in q(
            db, "SELECT rubric_id, status, count(*) FROM cases GROUP BY 1, 2"
        )
    }
    got = {(row["rubric"], s): n for row in data["queue"] for s, n in row["by_status"].items() if n}
    assert got == by
    assert sum(d["opened"] for d in data["days"]) == sum(by.values())
    assert sum(d["closed"] for d in data["days"]) == 1
    assert data["decisions"] == [
        {
            "reviewer": "dana",
            "decisions": {"suspend": 1},
            "total": 1,
            "median_hours_to_close": data["decisions"][0]["median_hours_to_close"],
        }
    ]
    n_inter = q(db, "SELECT count(*) FROM interactions")[0][0]
    assert data["processing"]["interactions"] == n_inter
    summaries = [b for b in data["processing"]["backends"] if b["stage"] == "summaries"]
    assert summaries[0]["backend"] == "embedded"
    assert summaries[0]["count"] == q(db, "SELECT count(*) FROM summaries")[0][0]
    for needle in ("queue depth", "reviewer decisions", "dana", "suspend 1", f"{n_inter:,}"):
        assert needle in r.stdout
    camp = q(db, "SELECT case_id FROM cases WHERE subject_type = 'campaign'")[0][0]
    assert camp in r.stdout
    # --since in the future leaves the current queue but no per-day or processing counts
    later = orjson.loads(
        tw("report", "overview", "--since", "2100-01-01", "--db", db, "--json").stdout
    )
    assert later["queue"] == data["queue"] and later["days"] == []
    assert later["processing"]["interactions"] == 0


@pytest.mark.parametrize("columns", [80, 160])
def test_interaction_drilldown_is_redacted(db: str, columns: int) -> None:
    iid, typed = q(
        db,
        "SELECT interaction_id, arguments ->> 'text' FROM steps"
        " WHERE (arguments ->> 'text') LIKE '%@mailbox.example' LIMIT 1",
    )[0]
    n_steps = q(db, "SELECT count(*) FROM steps WHERE interaction_id = ?", [iid])[0][0]
    r = tw("report", "interaction", iid, "--db", db, columns=columns)
    assert r.returncode == 0, r.stderr
    fits(r.stdout, columns)
    assert typed not in r.stdout and "[EMAIL:" in r.stdout
    data = orjson.loads(tw("report", "interaction", iid, "--db", db, "--json").stdout)
    assert len(data["steps"]) == n_steps and f"{n_steps} step(s)" in r.stdout
    raw = orjson.dumps(data).decode()
    assert typed not in raw
    passwords = [
        row[0]
        for row in q(
            db,
            "SELECT arguments ->> 'text' FROM steps WHERE interaction_id = ? AND action = 'type'",
            [iid],
        )
    ]
    secrets = [p for p in passwords if p and not p.startswith("http")]
    assert len(secrets) >= 2 and all(p not in raw and p not in r.stdout for p in secrets)
    shots = [a for s in data["steps"] for a in s["attachments"]]
    assert shots and all(
        re.match(r"image/\w+ [\d.]+ (B|KB|MB) sha256:[0-9a-f]{16}", a) for a in shots
    )


@pytest.mark.parametrize("columns", [80, 160])
def test_account_report_lists_windows_and_cases(db: str, columns: int) -> None:
    account, case_id = q(
        db,
        "SELECT subject, case_id FROM cases WHERE subject_type = 'account'"
        " ORDER BY priority DESC LIMIT 1",
    )[0]
    r = tw("report", "account", account, "--db", db, columns=columns)
    assert r.returncode == 0, r.stderr
    fits(r.stdout, columns)
    assert account in r.stdout and case_id in squash(r.stdout)
    data = orjson.loads(tw("report", "account", account, "--db", db, "--json").stdout)
    n_windows = q(
        db,
        "SELECT count(*) FROM aggregates WHERE subject = ? AND kind <> 'campaign'",
        [account],
    )[0][0]
    assert len(data["windows"]) == n_windows > 0
    assert data["interactions"] == data["timeline"]["total"]
    assert any(w["flagged"] for w in data["windows"] + data["campaigns"])
    missing = tw("report", "account", account[:-1], "--db", db)
    assert missing.returncode == 2 and "did you mean" in missing.stderr


def test_no_color_and_forced_color(db: str) -> None:
    colored = tw("report", "overview", "--db", db, FORCE_COLOR="1", TERM="xterm-256color")
    assert ANSI.search(colored.stdout), (
        "forced colour should colour (else this test proves nothing)"
    )
    plain = tw(
        "report", "overview", "--db", db, FORCE_COLOR="1", NO_COLOR="1", TERM="xterm-256color"
    )
    assert plain.returncode == 0
    assert not re.search(r"\x1b\[[0-9;]*3[0-9]m|\x1b\[[0-9;]*38;", plain.stdout)
    assert ANSI.sub("", plain.stdout).strip() == ANSI.sub("", colored.stdout).strip()


def test_html_and_svg_export(db: str, tmp_path: Path) -> None:
    case_id = q(db, "SELECT case_id FROM cases ORDER BY priority DESC LIMIT 1")[0][0]
    html, svg = tmp_path / "case.html", tmp_path / "case.svg"
    r = tw("report", "case", case_id, "--db", db, "--html", str(html), "--svg", str(svg))
    assert r.returncode == 0, r.stderr
    assert case_id in html.read_text() and "<html" in html.read_text().lower()
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg")
    assert case_id in "".join(root.itertext()).replace("\xa0", " ")
    nowhere = tw("report", "overview", "--db", db, "--svg", str(tmp_path / "no" / "x.svg"))
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr


def test_empty_database_gives_guidance(tmp_path: Path) -> None:
    path = str(tmp_path / "empty.duckdb")
    Store(path).close()
    for args in (
        ("overview",),
        ("case", "--top"),
        ("case", "C-123"),
        ("account", "a1"),
        ("interaction", "i1"),
    ):
        r = tw("report", *args, "--db", path)
        assert r.returncode == 0, (args, r.stderr)
        assert "tracewatch run" in r.stdout, args
        j = tw("report", *args, "--db", path, "--json")
        assert orjson.loads(j.stdout)["empty"] is True
    missing = tw("report", "overview", "--db", str(tmp_path / "nope.duckdb"))
    assert missing.returncode == 2 and "no such database" in missing.stderr
