"""Detection metrics, written out so each can be checked by hand on a tiny case.

Scores rank accounts; labels say which are harmful. ROC AUC is the probability that a random
harmful account outscores a random benign one (ties count half). Recall at an FPR budget uses
the lowest threshold whose false-positive rate stays within the budget, so it is what a
reviewer team that can afford that many false alarms would catch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

from pydantic import BaseModel


class Confusion(BaseModel):
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def fpr(self) -> float | None:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else None


def confusion(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> Confusion:
    c = Confusion()
    for s, y in zip(scores, labels, strict=True):
        hit = s >= threshold
        if y and hit:
            c.tp += 1
        elif y:
            c.fn += 1
        elif hit:
            c.fp += 1
        else:
            c.tn += 1
    return c


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    # Rank-sum (Mann-Whitney U) with average ranks for ties: O(n log n).
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_pos = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    u = rank_pos - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))


def threshold_at_fpr(scores: Sequence[float], labels: Sequence[bool], max_fpr: float) -> float:
    """The lowest threshold (above zero) whose false-positive rate is at most max_fpr."""
    neg = sorted((s for s, y in zip(scores, labels, strict=True) if not y), reverse=True)
    allowed = int(max_fpr * len(neg) + 1e-9)
    candidates = sorted({s for s in scores if s > 0}, reverse=True)
    best = float("inf")
    for t in candidates:
        fp = sum(1 for s in neg if s >= t)
        if fp > allowed:
            break
        best = t
    return best


def recall_at_fpr(scores: Sequence[float], labels: Sequence[bool], max_fpr: float) -> float | None:
    t = threshold_at_fpr(scores, labels, max_fpr)
    return confusion(scores, labels, t).recall if t != float("inf") else 0.0


def pairwise(groups_true: dict[str, str | None], groups_pred: Iterable[set[str]]) -> Confusion:
    """Pairs of accounts put in one campaign, against the labelled campaign ids.

    A true pair is two accounts with the same campaign id; a predicted pair is two accounts
    in one predicted group. Only tp, fp and fn are meaningful here.
    """
    true_pairs = {
        frozenset(p)
        for cid in {c for c in groups_true.values() if c}
        for p in combinations(sorted(a for a, c in groups_true.items() if c == cid), 2)
    }
    pred_pairs = {frozenset(p) for g in groups_pred for p in combinations(sorted(g), 2)}
    return Confusion(
        tp=len(true_pairs & pred_pairs),
        fp=len(pred_pairs - true_pairs),
        fn=len(true_pairs - pred_pairs),
    )
