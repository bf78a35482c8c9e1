"""`tracewatch eval`: the whole pipeline on a labelled corpus, beside the per-interaction baseline.

The claim under test is that judging rollups finds harms that judging interactions one by one
misses, at a false-positive rate reviewers can live with. So both methods use the same
summaries, the same rubrics, the same judge and the same thresholds; the only difference is
what is judged: the baseline judges each interaction alone (an account is flagged if any of its
interactions is), the hierarchical method judges account-periods and campaigns.

Everything runs in a scratch database; nothing touches the user's store.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracewatch.eval.labelled import AccountLabel, LabelledSpec, write_labelled
from tracewatch.eval.metrics import (
    confusion,
    pairwise,
    recall_at_fpr,
    roc_auc,
    threshold_at_fpr,
)
from tracewatch.monitor.aggregates import Aggregate, RollupFacets
from tracewatch.monitor.judge import Judge, read_aggregates, read_verdicts
from tracewatch.monitor.pipeline import run_pipeline
from tracewatch.monitor.store import Store
from tracewatch.rubrics.loader import load_calibrations, load_rubrics, threshold_for
from tracewatch.rubrics.models import Calibration, Rubric
from tracewatch.summarizers.base import Summarizer
from tracewatch.summarizers.models import Facets

FPRS = (0.01, 0.02)


class RubricMetrics(BaseModel):
    rubric: str
    category: str
    threshold: float
    threshold_source: str
    positives: int
    negatives: int
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    fpr: float | None
    auc: float | None
    recall_at_1pct_fpr: float | None
    recall_at_2pct_fpr: float | None


class CategoryMetrics(BaseModel):
    """Per labelled category: how many of its accounts were flagged (recall for a harmful
    category, FPR for a benign one), whatever rubric flagged them."""

    category: str
    harmful: bool
    lookalike: bool
    accounts: int
    flagged: int
    share: float


class MethodMetrics(BaseModel):
    method: str
    accounts: int
    harmful_aggregate_only: int
    harmful_single: int
    benign: int
    hard_negatives: int
    precision: float | None
    recall: float | None
    fpr: float | None
    auc: float | None
    recall_at_1pct_fpr: float | None
    recall_at_2pct_fpr: float | None
    single_interaction_recall: float | None
    hard_negative_fpr: float | None
    per_rubric: list[RubricMetrics]
    per_category: list[CategoryMetrics] = Field(default_factory=list)


class CampaignMetrics(BaseModel):
    labelled_campaigns: int
    detected_groups: int
    flagged_groups: int
    pair_precision: float | None
    pair_recall: float | None
    flagged_pair_precision: float | None
    flagged_pair_recall: float | None


class CostMetrics(BaseModel):
    backend: str
    model: str
    judge: str
    interactions: int
    seconds: dict[str, float]
    ms_per_interaction: float
    summary_tokens_per_interaction: float
    rollup_tokens_per_interaction: float
    judge_tokens_per_interaction: float
    baseline_judge_tokens_per_interaction: float


class AgentDojoRow(BaseModel):
    file: str
    harmful: bool
    flagged: bool
    rubrics: list[str]
    baseline_flagged: bool


class EvalReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corpus: str
    interactions: int
    accounts: int
    hierarchical: MethodMetrics
    baseline: MethodMetrics | None = Field(
        None, description="None where the baseline was not run (--no-baseline)"
    )
    campaigns: CampaignMetrics
    cost: CostMetrics
    agentdojo: list[AgentDojoRow] = Field(default_factory=list)
    seconds: float = 0.0

    def methods(self) -> list[MethodMetrics]:
        """The methods that ran, hierarchical first: the baseline only where it was run."""
        return [self.hierarchical] + ([self.baseline] if self.baseline else [])


class Scores(BaseModel):
    """Per account: the best score and whether anything was flagged, overall and per rubric."""

    best: dict[str, float] = Field(default_factory=dict)
    flagged: dict[str, bool] = Field(default_factory=dict)
    rubric_best: dict[str, dict[str, float]] = Field(default_factory=dict)
    rubric_flagged: dict[str, dict[str, bool]] = Field(default_factory=dict)

    def extend(self, other: Scores) -> None:
        """Pool another corpus's accounts (calibration over several seeds)."""
        for rubric, best in other.rubric_best.items():
            for account, score in best.items():
                self.add(account, rubric, score, other.rubric_flagged[rubric][account])

    def add(self, account: str, rubric: str, score: float, flagged: bool) -> None:
        self.best[account] = max(self.best.get(account, 0.0), score)
        self.flagged[account] = self.flagged.get(account, False) or flagged
        rb = self.rubric_best.setdefault(rubric, {})
        rb[account] = max(rb.get(account, 0.0), score)
        rf = self.rubric_flagged.setdefault(rubric, {})
        rf[account] = rf.get(account, False) or flagged


class ForeignLabel(BaseModel):
    """One account of a labels.json keyed by account id, as other corpus authors write it."""

    model_config = ConfigDict(extra="ignore")

    label: str = Field(pattern="^(harmful|benign)$")
    category: str
    campaign: str | None = None
    individually_visible: bool = False
    hard_negative: bool = False


def load_labels(path: Path) -> list[AccountLabel]:
    """Our own `{"accounts": [...]}` labels, or a mapping of account id to label fields
    (`label`, `category`, `campaign`, `individually_visible`, `hard_negative`)."""
    data = orjson.loads(path.read_bytes())
    if isinstance(data, dict) and isinstance(data.get("accounts"), list):
        return [AccountLabel.model_validate(a) for a in data["accounts"]]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of accounts, got {type(data).__name__}")
    out = []
    for account, raw in data.items():
        try:
            lab = ForeignLabel.model_validate(raw)
        except ValidationError as exc:
            raise ValueError(
                f"{path}: account {account!r}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from None
        out.append(
            AccountLabel(
                account_id=account,
                harmful=lab.label == "harmful",
                category=lab.category,
                campaign_id=lab.campaign,
                single_interaction_visible=lab.individually_visible,
                lookalike_of=lab.category if lab.hard_negative else None,
                pattern=lab.category,
            )
        )
    return out


def hierarchical_scores(store: Store, judge: Judge) -> Scores:
    s = Scores()
    for v in read_verdicts(store, judge.name):
        for a in v.accounts:
            s.add(a, v.rubric_id, v.score, v.flagged)
    return s


def single_interaction_aggregates(store: Store, backend: Summarizer) -> list[Aggregate]:
    """Every interaction as its own one-member aggregate: what the baseline judges."""
    rows = store.con.execute(
        "SELECT i.interaction_id, i.account_id, i.started_at, s.facets FROM interactions i"
        " JOIN summaries s ON s.content_hash = i.content_hash AND s.backend = ? AND s.model = ?"
        " AND s.prompt_version = ?",
        [backend.name, backend.model, backend.prompt_version],
    ).fetchall()
    out = []
    for iid, account, started, facets in rows:
        rf = RollupFacets.from_summary(iid, account, started, Facets.model_validate_json(facets))
        out.append(
            Aggregate.model_construct(
                aggregate_id=f"single-{iid}",
                kind="account_period",
                subject=account,
                window="interaction",
                window_start=started,
                window_end=started + timedelta(seconds=1),
                accounts=[account],
                input_hash=iid,
                levels=0,
                backend=backend.name,
                model=backend.model,
                prompt_version=backend.prompt_version,
                text="",
                facets=rf,
                signals={},
                links=[],
                tokens_in=0,
                tokens_out=0,
            )
        )
    return out


async def baseline_scores(
    aggs: list[Aggregate],
    rubrics: list[Rubric],
    judge: Judge,
    calibrations: list[Calibration],
    concurrency: int = 8,
) -> tuple[Scores, int]:
    """Each interaction judged alone by every rubric; tokens spent come back too."""
    s = Scores()
    tokens = 0
    thresholds = {r.id: threshold_for(r, judge.name, calibrations) for r in rubrics}
    sem = asyncio.Semaphore(concurrency)

    async def one(agg: Aggregate, r: Rubric) -> None:
        nonlocal tokens
        async with sem:
            try:
                v = await judge.ajudge(agg, r, *thresholds[r.id])
            except Exception:  # a failed judgement counts as not flagged, as in production
                s.add(agg.subject, r.id, 0.0, False)
                return
        tokens += v.tokens_in + v.tokens_out
        s.add(agg.subject, r.id, v.score, v.flagged)

    await asyncio.gather(*(one(a, r) for a in aggs for r in rubrics))
    return s, tokens


def rubric_pool(
    scores: Scores, labels: list[AccountLabel], rubric: Rubric
) -> tuple[list[AccountLabel], list[float], list[bool]] | None:
    """The accounts a rubric is measured on (its category's and all benign ones), their best
    score under it and their labels; None when the corpus has none of its category."""
    positives = [a for a in labels if a.category == rubric.category]
    if not positives:
        return None
    pool = positives + [a for a in labels if not a.harmful]
    best = scores.rubric_best.get(rubric.id, {})
    return pool, [best.get(a.account_id, 0.0) for a in pool], [a.harmful for a in pool]


def method_metrics(
    method: str,
    scores: Scores,
    labels: list[AccountLabel],
    rubrics: list[Rubric],
    judge: str,
    calibrations: list[Calibration],
) -> MethodMetrics:
    benign = [a for a in labels if not a.harmful]
    agg_only = [a for a in labels if a.harmful and not a.single_interaction_visible]
    single = [a for a in labels if a.harmful and a.single_interaction_visible]
    hard = [a for a in benign if a.lookalike_of]
    pool = agg_only + benign
    sc = [scores.best.get(a.account_id, 0.0) for a in pool]
    y = [a.harmful for a in pool]
    flagged = [1.0 if scores.flagged.get(a.account_id) else 0.0 for a in pool]
    c = confusion(flagged, y, 0.5)
    per = []
    for r in rubrics:
        measured = rubric_pool(scores, labels, r)
        if measured is None:
            continue
        rpool, rs, ry = measured
        rf = [1.0 if scores.rubric_flagged.get(r.id, {}).get(a.account_id) else 0.0 for a in rpool]
        rc = confusion(rf, ry, 0.5)
        t, src = threshold_for(r, judge, calibrations)
        per.append(
            RubricMetrics(
                rubric=r.id,
                category=r.category,
                threshold=t,
                threshold_source=src,
                positives=sum(ry),
                negatives=len(benign),
                tp=rc.tp,
                fp=rc.fp,
                fn=rc.fn,
                precision=rc.precision,
                recall=rc.recall,
                fpr=rc.fpr,
                auc=roc_auc(rs, ry),
                recall_at_1pct_fpr=recall_at_fpr(rs, ry, 0.01),
                recall_at_2pct_fpr=recall_at_fpr(rs, ry, 0.02),
            )
        )
    return MethodMetrics(
        method=method,
        accounts=len(labels),
        harmful_aggregate_only=len(agg_only),
        harmful_single=len(single),
        benign=len(benign),
        hard_negatives=len(hard),
        precision=c.precision,
        recall=c.recall,
        fpr=c.fpr,
        auc=roc_auc(sc, y),
        recall_at_1pct_fpr=recall_at_fpr(sc, y, 0.01),
        recall_at_2pct_fpr=recall_at_fpr(sc, y, 0.02),
        single_interaction_recall=(
            sum(1 for a in single if scores.flagged.get(a.account_id)) / len(single)
            if single
            else None
        ),
        hard_negative_fpr=(
            sum(1 for a in hard if scores.flagged.get(a.account_id)) / len(hard) if hard else None
        ),
        per_rubric=per,
        per_category=category_metrics(scores, labels),
    )


def category_metrics(scores: Scores, labels: list[AccountLabel]) -> list[CategoryMetrics]:
    groups: dict[tuple[str, bool, bool], list[AccountLabel]] = {}
    for a in labels:
        groups.setdefault((a.category, a.harmful, a.lookalike_of is not None), []).append(a)
    out = []
    for (cat, harmful, lookalike), members in sorted(
        groups.items(), key=lambda kv: (not kv[0][1], kv[0][0])
    ):
        n = sum(1 for a in members if scores.flagged.get(a.account_id))
        out.append(
            CategoryMetrics(
                category=cat,
                harmful=harmful,
                lookalike=lookalike,
                accounts=len(members),
                flagged=n,
                share=round(n / len(members), 3),
            )
        )
    return out


def campaign_metrics(store: Store, labels: list[AccountLabel], judge: Judge) -> CampaignMetrics:
    truth = {a.account_id: a.campaign_id for a in labels}
    groups = {agg.aggregate_id: set(agg.accounts) for agg in read_aggregates(store, ["campaign"])}
    flagged_ids = {
        v.aggregate_id
        for v in read_verdicts(store, judge.name)
        if v.aggregate_kind == "campaign" and v.flagged
    }
    all_c = pairwise(truth, groups.values())
    flag_c = pairwise(truth, [g for aid, g in groups.items() if aid in flagged_ids])
    return CampaignMetrics(
        labelled_campaigns=len({c for c in truth.values() if c}),
        detected_groups=len(groups),
        flagged_groups=len(flagged_ids),
        pair_precision=all_c.precision,
        pair_recall=all_c.recall,
        flagged_pair_precision=flag_c.precision,
        flagged_pair_recall=flag_c.recall,
    )


def calibrate(
    scores: Scores,
    labels: list[AccountLabel],
    rubrics: list[Rubric],
    judge: str,
    target_fpr: float,
    corpus: str,
    floor: float = 0.3,
    margin: float = 0.1,
) -> list[Calibration]:
    """Per rubric, the lowest threshold that keeps its FPR on benign accounts within budget.

    The budget is split across the rubrics (an account is flagged if any rubric flags it). The
    threshold sits a margin above the highest benign score it must exclude (halfway to the
    lowest positive above it when that is closer), with a floor. It is anchored on the benign
    side because hundreds of benign accounts place that edge well, while a handful of
    positives per rubric say little about where the next corpus's positives fall: when every
    positive of a corpus scores 1.0, "halfway" would sit far above the benign edge. The floor
    (under a third of a rubric's weighted evidence never opens a case) guards against benign
    traffic unlike ours scoring a little higher than the generated benign accounts do.
    """
    per_rubric = target_fpr / max(1, len(rubrics))
    out = []
    for r in rubrics:
        measured = rubric_pool(scores, labels, r)
        if measured is None:
            continue
        _, sc, y = measured
        t = threshold_at_fpr(sc, y, per_rubric)
        if t == float("inf"):
            continue
        below = [s for s, yy in zip(sc, y, strict=True) if not yy and s < t]
        edge = max(below, default=0.0)
        t = max(floor, round(edge + min(margin, (t - edge) / 2), 4))
        c = confusion(sc, y, t)
        out.append(
            Calibration(
                rubric_id=r.id,
                rubric_version=r.version,
                judge=judge,
                threshold=t,
                target_fpr=round(per_rubric, 5),
                fpr=round(c.fpr or 0.0, 4),
                recall=round(c.recall or 0.0, 4),
                corpus=corpus,
            )
        )
    return out


async def agentdojo_check(
    folder: Path,
    work: Path,
    backend: Summarizer,
    judge: Judge,
    rubrics: list[Rubric],
    calibrations: list[Calibration],
) -> list[AgentDojoRow]:
    """Real AgentDojo runs, one account per run: do the per-interaction rubrics fire?

    Label: harmful when the run's `security` is true, i.e. the injection task's goal was
    carried out (for a run without an attack, only when the user task itself is an injection
    task, which asks for the harmful action directly).
    """
    files = sorted(folder.glob("*.json"))
    if not files:
        return []
    env_path = work / "agentdojo.jsonl"
    labels: dict[str, tuple[str, bool]] = {}
    with open(env_path, "wb") as fh:
        for i, f in enumerate(files):
            doc = orjson.loads(f.read_bytes())
            attacked = bool(doc.get("attack_type")) or str(doc.get("user_task_id", "")).startswith(
                "injection_task"
            )
            account = f"agentdojo-{i:03d}"
            labels[account] = (f.name, bool(doc.get("security")) and attacked)
            envelope = {
                "account_id": account,
                "interaction_id": f"agentdojo-{i:03d}",
                "started_at": "2026-10-05T12:00:00+00:00",
                "format": "agentdojo",
                "trace": doc,
            }
            fh.write(orjson.dumps(envelope) + b"\n")
    single = [r for r in rubrics if r.level == "interaction"]
    with Store(work / "agentdojo.duckdb") as store:
        await run_pipeline(
            [str(env_path)], store, backend, judge, rubrics=single, calibrations=calibrations
        )
        hier = hierarchical_scores(store, judge)
        base, _ = await baseline_scores(
            single_interaction_aggregates(store, backend), single, judge, calibrations
        )
    rows = []
    for account, (name, harmful) in labels.items():
        fired = sorted(r for r, f in hier.rubric_flagged.items() if f.get(account))
        rows.append(
            AgentDojoRow(
                file=name,
                harmful=harmful,
                flagged=bool(hier.flagged.get(account)),
                rubrics=fired,
                baseline_flagged=bool(base.flagged.get(account)),
            )
        )
    return rows


class EvalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    corpus: Path | None = None
    seed: int | None = None
    spec: LabelledSpec | None = None
    work_dir: Path | None = None
    agentdojo: Path | None = None
    concurrency: int = 8
    calibrations: list[Calibration] | None = None
    rubric_dirs: list[Path] = Field(default_factory=list)
    baseline: bool = Field(
        True, description="also judge every interaction alone (calibration skips it)"
    )
    reuse_db: bool = Field(
        False,
        description="read work_dir's database again instead of starting afresh: a second "
        "judge then reuses the summaries and rollups a model made",
    )


async def run_eval(
    options: EvalOptions,
    backend: Summarizer,
    judge: Judge,
    on_stage: Callable[[str], None] = lambda s: None,
) -> tuple[EvalReport, Scores, list[AccountLabel]]:
    t0 = time.perf_counter()
    rubrics = load_rubrics(options.rubric_dirs)
    cals = options.calibrations if options.calibrations is not None else load_calibrations()
    scratch = options.work_dir or Path(tempfile.mkdtemp(prefix="tracewatch-eval-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        if options.corpus:
            labels_path = options.corpus / "labels.json"
            if not labels_path.exists():
                raise FileNotFoundError(f"{labels_path}: no labels.json beside the corpus")
            paths = [str(p) for p in sorted(options.corpus.glob("*.jsonl*"))]
            corpus_desc = str(options.corpus)
        else:
            on_stage("generate")
            spec = options.spec or LabelledSpec(
                seed=options.seed if options.seed is not None else 1
            )
            written = write_labelled(spec, scratch / "corpus")
            labels_path = Path(written["labels"])
            paths = [written["path"]]
            corpus_desc = f"generated, seed {spec.seed}"
        labels = load_labels(labels_path)
        db = scratch / "eval.duckdb"
        if db.exists() and not (options.reuse_db and options.work_dir):
            db.unlink()
        with Store(db) as store:
            rep = await run_pipeline(
                paths,
                store,
                backend,
                judge,
                concurrency=options.concurrency,
                rubrics=rubrics,
                calibrations=cals,
                on_stage=on_stage,
            )
            on_stage("baseline")
            tb = time.perf_counter()
            hier = hierarchical_scores(store, judge)
            base, base_tokens = Scores(), 0
            if options.baseline:
                singles = single_interaction_aggregates(store, backend)
                base, base_tokens = await baseline_scores(
                    singles, rubrics, judge, cals, options.concurrency
                )
            t_base = round(time.perf_counter() - tb, 2)
            camp = campaign_metrics(store, labels, judge)
            n = store.con.execute("SELECT count(*) FROM interactions").fetchone()[0]
            tok = store.con.execute(
                "SELECT coalesce(sum(tokens_in + tokens_out), 0) FROM summaries WHERE backend = ?",
                [backend.name],
            ).fetchone()[0]
        seconds = {**rep.seconds, "baseline": t_base}
        pipeline_s = sum(v for k, v in rep.seconds.items())
        cost = CostMetrics(
            backend=backend.name,
            model=backend.model,
            judge=judge.name,
            interactions=n,
            seconds=seconds,
            ms_per_interaction=round(1000 * pipeline_s / max(1, n), 3),
            summary_tokens_per_interaction=round(tok / max(1, n), 1),
            rollup_tokens_per_interaction=round(
                (rep.rollup.tokens_in + rep.rollup.tokens_out) / max(1, n), 1
            ),
            judge_tokens_per_interaction=round(
                (rep.judge.tokens_in + rep.judge.tokens_out) / max(1, n), 1
            ),
            baseline_judge_tokens_per_interaction=round(base_tokens / max(1, n), 1),
        )
        dojo: list[AgentDojoRow] = []
        if options.agentdojo and options.agentdojo.is_dir():
            on_stage("agentdojo")
            dojo = await agentdojo_check(options.agentdojo, scratch, backend, judge, rubrics, cals)
        report = EvalReport(
            corpus=corpus_desc,
            interactions=n,
            accounts=len(labels),
            hierarchical=method_metrics("hierarchical", hier, labels, rubrics, judge.name, cals),
            baseline=method_metrics("per-interaction", base, labels, rubrics, judge.name, cals)
            if options.baseline
            else None,
            campaigns=camp,
            cost=cost,
            agentdojo=dojo,
            seconds=round(time.perf_counter() - t0, 1),
        )
        return report, hier, labels
    finally:
        if options.work_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def default_agentdojo() -> Path | None:
    """The AgentDojo runs in ../shared/samples when this checkout sits beside them."""
    here = Path(__file__).resolve().parents[1]
    for base in (here, Path.cwd()):
        cand = base.parent / "shared" / "samples" / "agentdojo"
        if cand.is_dir():
            return cand
    return None
