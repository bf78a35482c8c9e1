"""The judge that needs no model: a rubric's signals, scored on an aggregate's facets.

Score = (weighted mean of the scoring signals' satisfaction, or for a rubric that combines by
        `max` the strongest of them against the heaviest weight)
        x (product of the required signals' satisfaction)
        x (product over the look-alikes' signals of (1 - weight x satisfaction)).
Each satisfaction is linear between the rubric's `start` and `full`, so the score is
continuous (it ranks accounts, which calibration and ROC need) and every factor can be read
back in the rationale. The look-alike factor is why volume alone never flags: a support agent's
thousand identical replies on its own portal meets the look-alike and scores near zero.

The judge reads only counts the rollup computed from redacted facets; text inside traces never
reaches it, so no instruction planted in a trace can change its verdict.
"""

from __future__ import annotations

from typing import Any

from tracewatch.monitor.aggregates import (
    Aggregate,
    Evidence,
    profile_page,
    specific_target,
    spread,
)
from tracewatch.rubrics.models import Quote, Rubric, SignalRule, Verdict
from tracewatch.rubrics.verdicts import new_verdict

CITE = 8
# Campaign links that name the accounts behind them (content groups name theirs separately).
LINKING_KINDS = ("target", "identity", "engagement", "narrative")


def judge_signals(agg: Aggregate) -> dict[str, Any]:
    """The aggregate's signals plus what only a campaign has: its links, personas per account."""
    sig = agg.facets.signals()
    # robust z-scores against the period's population, added by the judge (monitor/population.py)
    sig.update({k: v for k, v in agg.signals.items() if k.endswith("_z")})
    kinds = [link.kind for link in agg.links]
    n_pairs = max(1, len(agg.accounts) * (len(agg.accounts) - 1) // 2)
    for kind in ("content", "target", "identity", "narrative", "engagement", "timing"):
        sig[f"link_{kind}"] = kinds.count(kind)
        # how much of the group one kind of evidence ties together (pair links per pair)
        sig[f"link_{kind}_pair_share"] = round(
            min(
                1.0,
                sum(1 for link in agg.links if link.kind == kind and len(link.accounts) == 2)
                / n_pairs,
            ),
            3,
        )
    sig["shared_wording_links"] = sig["link_content"] + sig["link_narrative"]
    n_accounts = max(1, len(agg.accounts))
    sig["identities_per_account"] = round(sig["account_identities"] / n_accounts, 3)
    sig["duplicate_domains_per_account"] = round(sig["duplicate_domains"] / n_accounts, 3)
    sig["promotion_sites_per_account"] = round(sig["promotion_sites"] / n_accounts, 3)
    if agg.kind == "campaign":
        # Per-account rubrics read `account_identities` as "identities behind one operator";
        # five people with one login each are not one operator with five.
        sig["campaign_identities"] = sig["account_identities"]
        sig["account_identities"] = sig["identities_per_account"]
    return sig


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def score(rubric: Rubric, sig: dict[str, Any]) -> tuple[float, list[str]]:
    """The score and the reasons, one line per factor, in the rubric's own terms."""
    scoring = [s for s in rubric.signals if not s.required]
    weighted = [s.weight * s.satisfaction(sig.get(s.signal)) for s in scoring]
    if rubric.combine == "max":
        base = max(weighted) / max(s.weight for s in scoring)
    else:
        base = sum(weighted) / sum(s.weight for s in scoring)
    reasons = []
    gate = 1.0
    for s in rubric.signals:
        sat = s.satisfaction(sig.get(s.signal))
        if s.required:
            gate *= sat
        reasons.append(_reason(s, sig.get(s.signal), sat, "required" if s.required else "signal"))
    damp = 1.0
    for look in rubric.benign_lookalikes:
        for s in look.signals:
            sat = s.satisfaction(sig.get(s.signal))
            if sat > 0:
                damp *= max(0.0, 1.0 - s.weight * sat)
                reasons.append(
                    f"looks like {look.name}: {s.signal}={_fmt(sig.get(s.signal))}"
                    f" ({s.why or 'look-alike'}), score x{max(0.0, 1 - s.weight * sat):.2f}"
                )
    return round(min(1.0, max(0.0, base * gate * damp)), 4), reasons


def _reason(s: SignalRule, value: Any, sat: float, role: str) -> str:
    return (
        f"{role} {s.signal}={_fmt(value)} ({s.why or 'signal'}; counts from {_fmt(s.start)},"
        f" full at {_fmt(s.full)}): {sat:.2f}"
    )


def _ids_of(evs: list[Evidence]) -> list[str]:
    out: list[str] = []
    for ev in sorted(evs, key=lambda e: -e.n):
        for i in ev.ids:
            if i not in out:
                out.append(i)
    return out


def evidence(agg: Aggregate, rubric: Rubric) -> tuple[list[str], list[Quote]]:
    """Interaction ids (and short redacted quotes) from the places the rubric names.

    A campaign cites its links' interactions first, taken in turn from each implicated
    account: a reviewer must see the same post or target from several accounts, and the
    lowest ids of a merged facet usually all belong to one of them.
    """
    f = agg.facets
    ids: list[str] = []
    quotes: list[Quote] = []
    if agg.kind == "campaign" and "links" in rubric.evidence_sources:
        members = set(implicated(agg, rubric))
        per: dict[str, list[str]] = {}
        for link in agg.links:
            for account, got in link.by_account.items():
                if account in members:
                    per.setdefault(account, []).extend(got)
        ids += spread(per, CITE)
    for src in rubric.evidence_sources:
        if src == "content":
            for g in [g for g in f.content if g.n >= 2] or f.content[:1]:
                ids += g.ids
                quotes.append(Quote(interaction_id=g.rep_id, text=g.text[:200]))
        elif src == "links":
            for link in agg.links:
                if not (agg.kind == "campaign" and link.by_account):  # cited above if so
                    ids += link.ids
                if link.kind == "content":
                    quotes.append(Quote(interaction_id=link.ids[0], text=link.key[:200]))
        elif src == "targets":
            ids += _ids_of([e for t, e in f.targets.items() if specific_target(t) and e.n >= 2])
        elif src == "profile_targets":
            ids += _ids_of([e for t, e in f.targets.items() if profile_page(t)])
        elif src == "identities":
            ids += _ids_of(list(f.identities.values()))
        elif src == "transactions":
            ids += _ids_of(list(f.transactions.values()))
        elif src == "risk_cues":
            for cue, ev in f.risk_cues.items():
                ids += ev.ids
                if ev.ids:
                    quotes.append(Quote(interaction_id=ev.ids[0], text=cue[:200]))
        elif src == "personal_data":
            ids += f.personal_data.ids
    seen: list[str] = []
    for i in ids:
        if i not in seen:
            seen.append(i)
    return seen[:CITE], quotes[:3]


def implicated(agg: Aggregate, rubric: Rubric) -> list[str]:
    """The members of a campaign that the rubric's evidence actually involves.

    Campaign detection links accounts by any strong evidence, so a bystander whose one stock
    sentence matches a spammer's cover traffic can end up in the component. A verdict names
    only the accounts behind the evidence it scored: those in the duplicate groups that make up
    most (80%) of the repeated posts, and those in the shared-target and identity links.
    """
    if agg.kind != "campaign":
        return agg.accounts
    keep: set[str] = set()
    groups = sorted((g for g in agg.facets.content if g.n >= 2), key=lambda g: -g.n)
    total = sum(g.n for g in groups)
    covered = 0
    for g in groups:
        if covered >= 0.8 * total:
            break
        keep.update(g.accounts)
        covered += g.n
    for link in agg.links:
        if link.kind in LINKING_KINDS and "links" in rubric.evidence_sources:
            keep.update(link.accounts)
    return sorted(keep & set(agg.accounts)) or agg.accounts


class SignalJudge:
    name = "signals"
    model = "rules-v1"

    def __init__(self) -> None:
        # The judge sees each aggregate once per rubric, in a row: its signals are worked out
        # once, not a dozen times (they were most of a re-judge's time).
        self._last: tuple[tuple[str, str], dict[str, Any]] | None = None

    def _signals(self, agg: Aggregate) -> dict[str, Any]:
        key = (agg.aggregate_id, agg.input_hash)
        if self._last is None or self._last[0] != key:
            self._last = (key, judge_signals(agg))
        return self._last[1]

    async def ajudge(
        self, agg: Aggregate, rubric: Rubric, threshold: float, threshold_source: str
    ) -> Verdict:
        return self.judge(agg, rubric, threshold, threshold_source)

    def judge(
        self, agg: Aggregate, rubric: Rubric, threshold: float, threshold_source: str
    ) -> Verdict:
        sig = self._signals(agg)
        value, reasons = score(rubric, sig)
        flagged = value >= threshold
        cited, quotes = evidence(agg, rubric) if value > 0 else ([], [])
        known = sig["interactions"] - sig["unsummarized"]
        coverage = known / sig["interactions"] if sig["interactions"] else 0.0
        confidence = round(min(1.0, 0.5 + abs(value - threshold)) * coverage, 3)
        members = implicated(agg, rubric)
        if len(members) < len(agg.accounts):
            reasons.append(
                f"{len(agg.accounts) - len(members)} linked account(s) not behind this evidence"
                " are not named"
            )
        used = {s.signal for s in rubric.signals} | {
            s.signal for look in rubric.benign_lookalikes for s in look.signals
        }
        head = (
            f"{'Flagged' if flagged else 'Not flagged'}: score {value:.2f} against threshold"
            f" {threshold:.2f} ({threshold_source})."
        )
        return new_verdict(
            agg,
            rubric,
            self.name,
            self.model,
            threshold,
            threshold_source,
            accounts=members,
            score=value,
            flagged=flagged,
            confidence=confidence,
            rationale=" ".join([head, *(r + "." for r in reasons)]),
            evidence=cited,
            quotes=quotes,
            signals={k: sig.get(k) for k in sorted(used)},
            reach=sig["interactions"],
        )
