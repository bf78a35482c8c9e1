"""Signals against what the same population does: robust z-scores over a period's accounts.

An absolute bar ("20 likes", "3 failed logins") means something else on a corpus of another
size and mix: a week of a busy deployment has accounts with hundreds of likes that are
ordinary there. So beside its absolute value, each count an account period shows is scored
against the other account periods of the same window (median and MAD, which a handful of
outliers cannot drag), as `<signal>_z`; rubrics weigh both, an absolute floor keeping a
population of bots from making bot behaviour look normal.

The z-scores are part of what a verdict was judged on, so they enter the aggregate's input
hash for judging: when the population moves, the verdicts it moves are judged again.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence

from tracewatch.monitor.aggregates import Aggregate
from tracewatch.monitor.rollup_store import digest

# Counts whose meaning depends on the population; shares and flags are already relative.
SIGNALS = (
    "interactions",
    "account_identities",
    "likes_follows_upvotes",
    "max_target_repeat",
    "logins",
    "login_failures",
    "signups",
    "reviews",
    "unpurchased_reviews",
    "purchased_quantity",
    "profile_pages",
    "personal_data_items",
    "promotion_sites",
    "posts",
    "max_in_10min",
)
MIN_POPULATION = 8  # fewer account periods than this say nothing about what is ordinary
Z_CAP = 50.0


def centre_spread(population: Sequence[float]) -> tuple[float, float]:
    """The median and the spread (1.4826 MAD, floored at one unit) of a population."""
    med = statistics.median(population)
    mad = statistics.median(abs(v - med) for v in population) * 1.4826
    return med, max(mad, 1.0)


def robust_z(value: float, population: Sequence[float]) -> float:
    """(value - median) / (1.4826 MAD), with a floor of one unit on the spread so that a
    population where nearly everyone shows 0 does not turn one event into infinity."""
    return _z(value, *centre_spread(population))


def _z(value: float, med: float, spread: float) -> float:
    return max(-Z_CAP, min(Z_CAP, (value - med) / spread))


def with_population(aggs: list[Aggregate]) -> list[Aggregate]:
    """The aggregates, account periods among them with `<signal>_z` added to their signals."""
    groups: dict[tuple[str, object], list[int]] = defaultdict(list)
    for i, agg in enumerate(aggs):
        if agg.kind == "account_period":
            groups[agg.window, agg.window_start].append(i)
    out = list(aggs)
    for members in groups.values():
        if len(members) < MIN_POPULATION:
            continue
        columns = {
            name: [float(aggs[i].signals.get(name) or 0) for i in members] for name in SIGNALS
        }
        # once per period and signal, not once per member (that was quadratic in accounts)
        centres = {name: centre_spread(values) for name, values in columns.items()}
        for pos, i in enumerate(members):
            agg = aggs[i]
            zs = {
                f"{name}_z": round(_z(values[pos], *centres[name]), 2)
                for name, values in columns.items()
            }
            out[i] = agg.model_copy(
                update={
                    "signals": {**agg.signals, **zs},
                    "input_hash": digest(agg.input_hash, sorted(zs.items())),
                }
            )
    return out
