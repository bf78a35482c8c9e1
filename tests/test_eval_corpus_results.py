"""The labelled corpus's OTLP share, the outbound-link signal and the README
results section: each through the real code path (ingest into DuckDB, the real CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tracewatch.eval.harness import (
    CampaignMetrics,
    CostMetrics,
    EvalReport,
    MethodMetrics,
    RubricMetrics,
)
from tracewatch.eval.labelled import LabelledSpec, write_labelled
from tracewatch.eval.results_markdown import BEGIN, END, render, write_readme
from tracewatch.monitor.aggregates import RollupFacets, link_hosts, same_site
from tracewatch.monitor.ingest import ingest
from tracewatch.monitor.store import Store
from tracewatch.summarizers.embedded import EmbeddedSummarizer
from tracewatch.summarizers.redaction import Redactor

TW = [sys.executable, "-m", "tracewatch.monitor.cli"]


def test_labelled_corpus_has_otlp_spans_that_ingest_with_their_tool_calls(tmp_path: Path) -> None:
    spec = LabelledSpec(
        seed=4, benign_accounts=12, harmful_per_category=1, lookalikes_per_category=0
    )
    written = write_labelled(spec, tmp_path / "c")
    lines = Path(written["path"]).read_bytes().splitlines()
    otlp = [orjson.loads(x) for x in lines if b'"resourceSpans"' in x]
    assert 0.08 * len(lines) < len(otlp) < 0.25 * len(lines), (len(otlp), len(lines))
    with Store(tmp_path / "t.duckdb") as store:
        report = ingest([written["path"]], store)
        assert report.quarantined == 0
        assert report.by_format["otel_genai"] == len(otlp)
        ids = [e["interaction_id"] for e in otlp]
        inters = {i.interaction_id: i for i in store.load_interactions(ids)}
    summarizer = EmbeddedSummarizer(Redactor(b"k"), "rules-v1")
    posted = 0
    for env in otlp:
        inter = inters[env["interaction_id"]]
        calls = [s for s in inter.steps if s.call_id]  # tool calls and navigations
        spans = env["trace"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
        tools = [s for s in spans if s["name"].startswith("execute_tool")]
        assert len(calls) == len(tools) and all(s.result is not None for s in calls)
        assert any(s.target_url for s in inter.steps)  # navigate carries the page
        facets = summarizer.summarize_sync(inter).facets
        posted += len(facets.posted)
    assert posted > 0  # text typed through type_text is read as published content


def test_link_hosts_reads_links_and_not_file_names() -> None:
    assert link_hosts("try zenfuel-deals.example/r/12 with code ZEN20") == {"zenfuel-deals.example"}
    assert link_hosts("see https://Blog.Example.org/post.") == {"blog.example.org"}
    assert link_hosts("visit www.shop.dev today") == {"shop.dev"}
    assert link_hosts("edit config.yaml, then mail a@b.com; e.g. this") == set()
    assert same_site("support.acme.example", "acme.example/help")
    assert not same_site("acme.example", "forum.other.example/t/1")


def _post_facets(iid: str, text: str, site: str) -> RollupFacets:
    from datetime import UTC, datetime

    from tracewatch.summarizers.fingerprints import minhash, simhash
    from tracewatch.summarizers.models import Facets, PostedContent

    f = Facets(
        posted=[PostedContent(text=text, target=site, simhash=simhash(text), minhash=minhash(text))]
    )
    return RollupFacets.from_summary(iid, "a1", datetime(2026, 10, 5, tzinfo=UTC), f)


def test_one_link_spun_across_sites_counts_as_promotion_reach() -> None:
    texts = [
        "Honestly what fixed my sleep was the ZenFuel pack, zenfuel-deals.example/r/1 has it",
        "if anyone wants the thing that actually helped, it is zenfuel-deals.example/r/1 now",
        "Ha, not sponsored, but the starter kit at zenfuel-deals.example/r/1 works wonders",
        "Fwiw the daily sachets from zenfuel-deals.example/r/1 changed my mornings entirely",
    ]
    sites = ["forum.a.example", "talk.b.example", "board.c.example", "q.d.example"]
    parts = [_post_facets(f"i{n}", t, s) for n, (t, s) in enumerate(zip(texts, sites, strict=True))]
    # merged in two chunks, as the rollup does, and in one: the same counts
    two = RollupFacets.merge([RollupFacets.merge(parts[:2]), RollupFacets.merge(parts[2:])])
    for merged in (RollupFacets.merge(parts), two):
        sig = merged.signals()
        assert sig["duplicate_domains"] == 0  # spun: no near-duplicate text
        assert sig["outlink_max_sites"] == 4 and sig["promotion_sites"] == 4
        assert sig["outlink_top_share"] == 1.0
    # a site linking to itself is not promotion elsewhere
    own = _post_facets("i9", "our news is on acme.example/news this week, come by", "acme.example")
    assert own.signals()["outlink_max_sites"] == 0


def _report() -> EvalReport:
    def method(name: str, recall: float) -> MethodMetrics:
        return MethodMetrics(
            method=name,
            accounts=10,
            harmful_aggregate_only=3,
            harmful_single=1,
            benign=6,
            hard_negatives=2,
            precision=None if recall == 0 else 0.75,
            recall=recall,
            fpr=0.0,
            auc=0.9,
            recall_at_1pct_fpr=recall,
            recall_at_2pct_fpr=recall,
            single_interaction_recall=1.0,
            hard_negative_fpr=0.0,
            per_rubric=[
                RubricMetrics(
                    rubric="spam-posting",
                    category="spam",
                    threshold=0.3,
                    threshold_source="calibrated",
                    positives=3,
                    negatives=6,
                    tp=2,
                    fp=0,
                    fn=1,
                    precision=1.0,
                    recall=recall,
                    fpr=0.0,
                    auc=0.9,
                    recall_at_1pct_fpr=recall,
                    recall_at_2pct_fpr=recall,
                )
            ],
        )

    return EvalReport(
        corpus="generated, seed 99",
        interactions=123,
        accounts=10,
        hierarchical=method("hierarchical", 0.667),
        baseline=method("per-interaction", 0.0),
        campaigns=CampaignMetrics(
            labelled_campaigns=1,
            detected_groups=2,
            flagged_groups=1,
            pair_precision=0.5,
            pair_recall=1.0,
            flagged_pair_precision=1.0,
            flagged_pair_recall=1.0,
        ),
        cost=CostMetrics(
            backend="embedded",
            model="rules-v1",
            judge="signals",
            interactions=123,
            seconds={"ingest": 1.0},
            ms_per_interaction=3.5,
            summary_tokens_per_interaction=0,
            rollup_tokens_per_interaction=0,
            judge_tokens_per_interaction=0,
            baseline_judge_tokens_per_interaction=0,
        ),
        seconds=12.0,
    )


def test_results_section_is_rendered_and_replaced_between_markers(tmp_path: Path) -> None:
    md = render(_report(), "tracewatch eval --generate --seed 99", "2 CPUs, no GPU")
    assert "| hierarchical | 0.750 | 0.667 | 0.000 | 0.900 |" in md
    assert "| per-interaction | - | 0.000 |" in md
    assert "| spam-posting | 0.30 | 3 | 0.667 |" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\nbefore\n{BEGIN}\nold figures\n{END}\nafter\n")
    write_readme(readme, md)
    text = readme.read_text()
    assert "old figures" not in text and md in text
    assert text.startswith("# t\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    write_readme(readme, md)  # idempotent: regenerating twice gives the same file
    assert readme.read_text() == text
    bare = tmp_path / "BARE.md"
    bare.write_text("# no markers\n")
    with pytest.raises(ValueError, match=r"BARE\.md: no results section"):
        write_readme(bare, md)


def test_eval_write_readme_refuses_a_missing_file_before_running(tmp_path: Path) -> None:
    r = subprocess.run(
        [*TW, "eval", "--generate", "--write-readme", str(tmp_path / "nope.md")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "nope.md: no such file" in r.stderr


def test_eval_reuses_a_kept_database_and_can_skip_the_baseline(tmp_path: Path) -> None:
    """A second judge on a kept database reads the summaries the first run made: with a model
    those are the costly part, and --reuse is how the real-model bench judges three ways."""
    spec = LabelledSpec(seed=5, benign_accounts=20, harmful_per_category=1,
                        lookalikes_per_category=1, single_harm_accounts=1)  # fmt: skip
    written = write_labelled(spec, tmp_path / "corpus")
    corpus = str(Path(written["labels"]).parent)
    keep = tmp_path / "work"
    base = [*TW, "eval", "--corpus", corpus, "--keep", str(keep), "--no-agentdojo", "--json"]

    def run(*extra: str) -> dict:
        r = subprocess.run([*base, *extra], capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        return orjson.loads(r.stdout)

    first = run()
    again = run("--reuse", "--no-baseline")
    with Store(keep / "eval.duckdb") as store:
        n = store.con.execute("SELECT count(*) FROM interactions").fetchone()[0]
    assert again["interactions"] == first["interactions"] == n > 0
    assert again["hierarchical"] == first["hierarchical"]
    assert first["baseline"]["method"] == "per-interaction"
    assert again["baseline"] is None  # not run, so not reported as a recall of 0
    # nothing was summarized or read twice: the kept database already held it
    with Store(keep / "eval.duckdb") as store:
        dup = store.con.execute(
            "SELECT count(*) - count(DISTINCT interaction_id) FROM interactions"
        ).fetchone()[0]
    assert dup == 0
    fresh = run("--no-baseline")  # without --reuse the kept database starts afresh
    assert fresh["hierarchical"] == first["hierarchical"]
    r = subprocess.run([*TW, "eval", "--corpus", corpus, "--reuse"], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2 and "--keep" in r.stderr
