"""`tracewatch eval`, `tracewatch calibrate` and `tracewatch corpus labelled`."""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tracewatch.monitor.cli_common import (
    JsonOption,
    ModelOption,
    SummarizerOption,
    VllmUrlOption,
    _backend,
    _fail,
    _print_json,
    err,
    out,
    run_stage,
)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def eval_cmd(
    corpus: Annotated[
        Path | None,
        typer.Option(help="A labelled corpus folder (*.jsonl envelopes and labels.json)."),
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Generate the labelled corpus with --seed.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for --generate.")] = 1,
    tools_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="With --generate: the share of interactions (of those not rendered as OTLP) "
            "run by function-calling agents (login(), submit_review(), ...) instead of "
            "computer use.",
        ),
    ] = 0.0,
    summarizer: SummarizerOption = "embedded",
    model: ModelOption = None,
    vllm_url: VllmUrlOption = "http://127.0.0.1:8000/v1",
    judge: Annotated[str, typer.Option(help="signals, llm or cascade.")] = "signals",
    agentdojo: Annotated[
        Path | None,
        typer.Option(
            help="AgentDojo run files to check the per-interaction rubrics on "
            "(default: ../shared/samples/agentdojo when present)."
        ),
    ] = None,
    keep: Annotated[
        Path | None, typer.Option(help="Keep the scratch corpus and database in this folder.")
    ] = None,
    reuse: Annotated[
        bool,
        typer.Option(
            "--reuse",
            help="With --keep: read the kept database again (same corpus) instead of afresh, so "
            "another --judge reuses the summaries and rollups (with a model, the costly part).",
        ),
    ] = False,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline/--no-baseline",
            help="Also judge every interaction alone (the per-interaction baseline). With "
            "--judge llm that asks the model about every interaction and rubric.",
        ),
    ] = True,
    no_agentdojo: Annotated[
        bool, typer.Option("--no-agentdojo", help="Skip the AgentDojo check.")
    ] = False,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the results as the README's tables.")
    ] = False,
    write_readme: Annotated[
        Path | None,
        typer.Option(
            help="Replace the results section of this README (between its eval-results "
            "markers) with the tables; what `make results` does."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Run the whole pipeline on a labelled corpus and print detection metrics, beside the
    per-interaction baseline (the same judge on each interaction alone).

    Accounts: precision, recall and FPR at the calibrated thresholds; ROC AUC and recall at 1%
    and 2% FPR; hard negatives (benign look-alikes) separately; campaign grouping as pairwise
    precision/recall; time and tokens per interaction. Works in a scratch database.
    """
    from tracewatch.eval.harness import EvalOptions, default_agentdojo, run_eval
    from tracewatch.eval.labelled import LabelledSpec
    from tracewatch.rubrics.registry import create_judge

    if not corpus and not generate:
        raise _fail("say what to evaluate: --corpus DIR or --generate [--seed N]")
    if write_readme is not None and not write_readme.is_file():
        raise _fail(f"{write_readme}: no such file")
    if reuse and keep is None:
        raise _fail("--reuse reads the database kept by --keep DIR: give --keep")
    with tempfile.TemporaryDirectory(prefix="tracewatch-eval-key-") as tmp:
        # a kept database keeps its redaction key beside it, so a reused one is read with the
        # pseudonyms it was written with
        key_home = keep if keep is not None else Path(tmp)
        key_home.mkdir(parents=True, exist_ok=True)
        backend = _backend(str(key_home / "eval.duckdb"), summarizer, model, vllm_url)
        try:
            j = create_judge(judge, backend)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        opts = EvalOptions(
            corpus=corpus,
            seed=seed if generate else None,
            spec=LabelledSpec(seed=seed, tools_share=tools_share) if generate else None,
            work_dir=keep,
            agentdojo=None if no_agentdojo else (agentdojo or default_agentdojo()),
            baseline=baseline,
            reuse_db=reuse,
        )
        status = err.status("eval", spinner="dots") if err.is_terminal and not json else None

        def stage(name: str) -> None:
            if status:
                status.update(f"eval: {name}")

        try:
            if status:
                status.start()
            report, _, _ = run_stage(backend, run_eval(opts, backend, j, on_stage=stage))
        except (FileNotFoundError, ValueError) as exc:
            raise _fail(str(exc)) from None
        finally:
            if status:
                status.stop()
            asyncio.run(backend.aclose())
    if json:
        _print_json(report.model_dump(mode="json"))
        return
    if markdown or write_readme:
        from tracewatch.eval.results_markdown import render
        from tracewatch.eval.results_markdown import write_readme as write_section

        what = f"--corpus {corpus}" if corpus else f"--generate --seed {seed}"
        if generate and tools_share:
            what += f" --tools-share {tools_share:g}"
        section = render(
            report,
            f"tracewatch eval {what} --summarizer {summarizer} --judge {judge}",
            f"{os.cpu_count()} CPUs, no GPU" if summarizer == "embedded" else platform.node(),
        )
        if write_readme:
            try:
                write_section(write_readme, section)
            except ValueError as exc:
                raise _fail(str(exc)) from None
            err.print(f"results written into {write_readme}")
        if markdown:
            print(section, end="")
        return
    print_report(report)


def print_report(report) -> None:  # type: ignore[no-untyped-def]
    m_h, m_b = report.hierarchical, report.baseline
    out.print(
        f"[bold]tracewatch eval[/]: {report.corpus}, {report.interactions} interactions, "
        f"{report.accounts} accounts ({m_h.harmful_aggregate_only} harmful aggregate-only, "
        f"{m_h.harmful_single} harmful in one interaction, {m_h.benign} benign of which "
        f"{m_h.hard_negatives} look-alikes); {report.cost.backend} backend, "
        f"{report.cost.judge} judge, {report.seconds:.0f} s",
        highlight=False,
    )
    t = Table(title="accounts: aggregate-only harmful vs benign", title_justify="left")
    for col in (
        "method",
        "precision",
        "recall",
        "FPR",
        "ROC AUC",
        "recall@1%FPR",
        "recall@2%FPR",
        "look-alike FPR",
        "single-interaction recall",
    ):
        t.add_column(col, justify="right" if col != "method" else "left")
    for m in report.methods():
        t.add_row(
            m.method,
            _fmt(m.precision),
            _fmt(m.recall),
            _fmt(m.fpr),
            _fmt(m.auc),
            _fmt(m.recall_at_1pct_fpr),
            _fmt(m.recall_at_2pct_fpr),
            _fmt(m.hard_negative_fpr),
            _fmt(m.single_interaction_recall),
        )
    out.print(t)
    t = Table(title="per rubric (hierarchical | per-interaction baseline)", title_justify="left")
    for col in (
        "rubric",
        "threshold",
        "pos",
        "recall",
        "FPR",
        "AUC",
        "r@2%",
        "base recall",
        "base FPR",
        "base AUC",
    ):
        t.add_column(col, justify="right" if col != "rubric" else "left")
    base = {r.rubric: r for r in m_b.per_rubric} if m_b else {}
    for r in m_h.per_rubric:
        b = base.get(r.rubric)
        t.add_row(
            r.rubric,
            f"{r.threshold:.2f}{'' if r.threshold_source == 'calibrated' else '*'}",
            str(r.positives),
            _fmt(r.recall),
            _fmt(r.fpr),
            _fmt(r.auc),
            _fmt(r.recall_at_2pct_fpr),
            _fmt(b.recall if b else None),
            _fmt(b.fpr if b else None),
            _fmt(b.auc if b else None),
        )
    out.print(t)
    out.print("[dim]* rubric default threshold (not calibrated for this judge)[/]")
    t = Table(
        title="per labelled category: share flagged (recall if harmful, FPR if benign)",
        title_justify="left",
    )
    for col in ("category", "kind", "accounts", "flagged", "share", "baseline share"):
        t.add_column(col, justify="right" if col not in ("category", "kind") else "left")
    base_cat = {(c.category, c.harmful): c for c in m_b.per_category} if m_b else {}
    for c in m_h.per_category:
        b = base_cat.get((c.category, c.harmful))
        kind = "harmful" if c.harmful else ("look-alike" if c.lookalike else "benign")
        t.add_row(
            c.category,
            kind,
            str(c.accounts),
            str(c.flagged),
            _fmt(c.share),
            _fmt(b.share if b else None),
        )
    out.print(t)
    c = report.campaigns
    out.print(
        f"campaigns: {c.labelled_campaigns} labelled, {c.detected_groups} groups detected, "
        f"{c.flagged_groups} flagged; pairwise precision {_fmt(c.pair_precision)} recall "
        f"{_fmt(c.pair_recall)} (flagged groups: {_fmt(c.flagged_pair_precision)} / "
        f"{_fmt(c.flagged_pair_recall)})",
        highlight=False,
    )
    k = report.cost
    out.print(
        f"cost: {k.ms_per_interaction:.2f} ms/interaction end to end "
        f"({', '.join(f'{s} {v:.1f}s' for s, v in k.seconds.items())}); tokens/interaction: "
        f"summary {k.summary_tokens_per_interaction}, rollup {k.rollup_tokens_per_interaction}, "
        f"judge {k.judge_tokens_per_interaction}, baseline judge "
        f"{k.baseline_judge_tokens_per_interaction}",
        highlight=False,
    )
    if report.agentdojo:
        t = Table(title="AgentDojo runs (real data), per-interaction rubrics", title_justify="left")
        for col in ("file", "harmful", "flagged", "rubrics"):
            t.add_column(col)
        for row in report.agentdojo:
            t.add_row(row.file, str(row.harmful), str(row.flagged), ", ".join(row.rubrics) or "-")
        out.print(t)


def calibrate_cmd(
    seed: Annotated[
        list[int] | None,
        typer.Option(
            help="Seed of a generated calibration corpus; repeat to pool several "
            "(default: 3, 4 and 5)."
        ),
    ] = None,
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            help="A labelled corpus folder (envelopes and labels.json) to pool beside the "
            "generated ones; repeat for several. Its benign accounts bound the thresholds even "
            "where its harm categories are named differently from the rubrics'."
        ),
    ] = None,
    target_fpr: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Account-level FPR budget, split over rubrics.")
    ] = 0.01,
    write: Annotated[
        bool,
        typer.Option("--write", help="Store the thresholds in rubrics/builtin/calibration.json."),
    ] = False,
    from_decisions: Annotated[
        bool,
        typer.Option(
            "--from-decisions",
            help="Instead: suggest thresholds from the reviewers' actioned and dismissed cases "
            "in --db (a suggestion to weigh; nothing is written).",
        ),
    ] = False,
    db: Annotated[
        str | None, typer.Option(help="Database whose decisions to read (--from-decisions).")
    ] = None,
    target_precision: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Precision to reach (--from-decisions)."),
    ] = 0.9,
    json: JsonOption = False,
) -> None:
    """Choose each rubric's threshold on generated labelled corpora for a target FPR.

    The corpora of all seeds are pooled: a few positives per rubric per corpus say little
    about where the next corpus's positives fall. Keep the seeds you report figures on out.
    Thresholds are stored with the rubric id and version they were set on; editing a rubric
    (a new version) falls back to its default threshold until it is calibrated again.
    """
    from tracewatch.eval.harness import EvalOptions, Scores, calibrate, run_eval
    from tracewatch.rubrics.loader import (
        CALIBRATION_FILE,
        load_calibrations,
        load_rubrics,
        save_calibrations,
        threshold_for,
    )
    from tracewatch.rubrics.registry import create_judge

    if from_decisions:
        _suggest_from_decisions(db, target_precision, json)
        return
    seeds = seed or [3, 4, 5]
    folders = corpus or []
    for f in folders:
        if not (f / "labels.json").is_file():
            raise _fail(f"{f}: no labels.json in this folder")
    scores, labels = Scores(), []
    per_corpus: list[tuple[str, Scores, list]] = []
    with tempfile.TemporaryDirectory(prefix="tracewatch-cal-") as tmp:
        backend = _backend(str(Path(tmp) / "eval.duckdb"), "embedded", None, "")
        j = create_judge("signals", backend)
        runs = [(f"seed {s}", EvalOptions(seed=s, calibrations=[], baseline=False)) for s in seeds]
        runs += [(str(f), EvalOptions(corpus=f, calibrations=[], baseline=False)) for f in folders]
        for name, opts in runs:
            with err.status(f"calibration corpus, {name}"):
                try:
                    _, one, lab = run_stage(backend, run_eval(opts, backend, j))
                except (FileNotFoundError, ValueError) as exc:
                    raise _fail(str(exc)) from None
            scores.extend(one)
            labels += lab
            per_corpus.append((name, one, lab))
    desc = "generate --seed " + ",".join(map(str, seeds))
    if folders:
        desc += " + " + ", ".join(f.name for f in folders)
    cals = calibrate(scores, labels, load_rubrics(), j.name, target_fpr, desc)
    thresholds = {r.id: threshold_for(r, j.name, cals)[0] for r in load_rubrics()}
    figures = [corpus_figures(name, one, lab, thresholds) for name, one, lab in per_corpus]
    if write:
        keep = [c for c in load_calibrations() if c.judge != j.name]
        save_calibrations(keep + cals)
    if json:
        _print_json(
            {"calibrations": [c.model_dump(mode="json") for c in cals], "per_corpus": figures}
        )
        return
    t = Table(
        title=f"calibration on seeds {', '.join(map(str, seeds))}, "
        f"FPR budget {target_fpr} (split over rubrics)",
        title_justify="left",
    )
    for col in ("rubric", "version", "threshold", "FPR", "recall"):
        t.add_column(col)
    for c in cals:
        t.add_row(
            c.rubric_id,
            str(c.rubric_version),
            f"{c.threshold:.4f}",
            f"{c.fpr:.4f}",
            f"{c.recall:.3f}",
        )
    out.print(t)
    t = Table(title="each corpus at these thresholds", title_justify="left")
    for col in ("corpus", "harmful recall", "benign FPR", "look-alike FPR"):
        t.add_column(col, justify="left" if col == "corpus" else "right")
    for f in figures:
        t.add_row(f["corpus"], _fmt(f["recall"]), _fmt(f["fpr"]), _fmt(f["lookalike_fpr"]))
    out.print(t)
    out.print(f"written to {CALIBRATION_FILE}" if write else "[dim]--write to store them[/]")


def _suggest_from_decisions(db: str | None, target: float, json: bool) -> None:
    from tracewatch.monitor.cli_common import _open
    from tracewatch.monitor.decisions import suggest_thresholds
    from tracewatch.rubrics.loader import load_calibrations, load_rubrics

    with _open(db, read_only=True) as store:
        rows = suggest_thresholds(store, load_rubrics(), load_calibrations(), "signals", target)
    if json:
        _print_json([r.model_dump() for r in rows])
        return
    if not rows:
        out.print("no decided cases yet (tracewatch queue claim / resolve / dismiss)")
        return
    t = Table(
        title=f"thresholds from reviewer decisions, target precision {target:g}",
        title_justify="left",
    )
    for col in ("rubric", "threshold", "decided", "actioned", "precision", "suggested", "why"):
        t.add_column(col, justify="left" if col in ("rubric", "why") else "right")
    for r in rows:
        t.add_row(
            r.rubric,
            f"{r.threshold:.2f}",
            str(r.decided),
            str(r.actioned),
            _fmt(r.precision),
            "-"
            if r.suggested is None
            else f"{r.suggested:.2f} (precision {r.precision_at_suggested:.2f}, "
            f"keeps {r.actioned_kept} of {r.actioned} actioned)",
            r.reason,
        )
    out.print(t)


def corpus_figures(name: str, scores, labels, thresholds: dict[str, float]) -> dict:  # type: ignore[no-untyped-def]
    """One corpus's account figures at the chosen thresholds (any rubric flags the account),
    so a threshold that suits one corpus and not another shows."""

    def flagged(account: str) -> bool:
        return any(
            best.get(account, 0.0) >= thresholds.get(rubric, 1.01)
            for rubric, best in scores.rubric_best.items()
        )

    harmful = [a for a in labels if a.harmful]
    benign = [a for a in labels if not a.harmful]
    looks = [a for a in benign if a.lookalike_of]

    def share(group: list) -> float | None:  # type: ignore[type-arg]
        return sum(flagged(a.account_id) for a in group) / len(group) if group else None

    return {
        "corpus": name,
        "recall": share(harmful),
        "fpr": share(benign),
        "lookalike_fpr": share(looks),
    }


def corpus_labelled_cmd(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")],
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same corpus.")] = 1,
    benign_accounts: Annotated[int, typer.Option(min=0, help="Ordinary accounts.")] = 200,
    harmful_per_category: Annotated[
        int, typer.Option(min=0, help="Harmful accounts per harm.")
    ] = 5,
    lookalikes_per_category: Annotated[
        int, typer.Option(min=0, help="Benign look-alikes per look-alike kind.")
    ] = 5,
    tools_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Share (of those not OTLP) run by function-calling agents."
        ),
    ] = 0.0,
    json: JsonOption = False,
) -> None:
    """Write the labelled corpus: interactions.jsonl (envelopes) and labels.json (per account)."""
    from tracewatch.eval.labelled import LabelledSpec, write_labelled

    spec = LabelledSpec(
        seed=seed,
        benign_accounts=benign_accounts,
        harmful_per_category=harmful_per_category,
        lookalikes_per_category=lookalikes_per_category,
        tools_share=tools_share,
    )
    written = write_labelled(spec, out_dir)
    if json:
        _print_json(written)
        return
    out.print(
        f"wrote {written['interactions']} interactions for {written['accounts']} accounts "
        f"({written['harmful']} harmful) to {written['path']}; labels in {written['labels']}"
    )
