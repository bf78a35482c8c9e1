"""Signals against the period's population: robust z-scores beside the absolute counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracewatch.monitor.aggregates import Aggregate, RollupFacets
from tracewatch.monitor.population import MIN_POPULATION, robust_z, with_population
from tracewatch.rubrics.signal_judge import judge_signals
from tracewatch.summarizers.models import Facets, Transaction

START = datetime(2026, 10, 5, tzinfo=UTC)


def period(account: str, likes: int, kind: str = "account_period") -> Aggregate:
    parts = [
        RollupFacets.from_summary(
            f"{account}-{i}",
            account,
            START + timedelta(hours=i),
            Facets(transactions=[Transaction(kind="like", outcome="success")]),
        )
        for i in range(likes)
    ] or [RollupFacets.from_summary(f"{account}-0", account, START, Facets())]
    facets = RollupFacets.merge(parts)
    return Aggregate(
        aggregate_id=f"agg-{account}",
        kind=kind,
        subject=account,
        window="1d",
        window_start=START,
        window_end=START + timedelta(days=7),
        accounts=[account],
        input_hash=f"h-{account}",
        levels=1,
        backend="embedded",
        model="rules-v1",
        prompt_version="p",
        text="",
        facets=facets,
        signals=facets.signals(),
    )


def test_an_outlier_stands_out_only_against_a_quiet_population() -> None:
    quiet = [period(f"q{i}", 2 + i % 2) for i in range(10)] + [period("busy", 30)]
    busy = [period(f"b{i}", 28 + i % 5) for i in range(10)] + [period("busy", 30)]
    z_quiet = {a.subject: a.signals["likes_follows_upvotes_z"] for a in with_population(quiet)}
    z_busy = {a.subject: a.signals["likes_follows_upvotes_z"] for a in with_population(busy)}
    assert z_quiet["busy"] >= 10 and abs(z_quiet["q0"]) <= 1
    assert abs(z_busy["busy"]) <= 2  # the same 30 likes are ordinary where everyone likes
    # the judge sees the z-scores beside the absolute counts
    sig = judge_signals(next(a for a in with_population(quiet) if a.subject == "busy"))
    assert sig["likes_follows_upvotes"] == 30 and sig["likes_follows_upvotes_z"] >= 10


def test_too_small_a_population_and_other_kinds_get_no_z() -> None:
    few = [period(f"f{i}", i) for i in range(MIN_POPULATION - 1)]
    assert all("likes_follows_upvotes_z" not in a.signals for a in with_population(few))
    windows = [period(f"w{i}", i, kind="account_window") for i in range(12)]
    assert all("likes_follows_upvotes_z" not in a.signals for a in with_population(windows))


def test_the_population_is_part_of_what_was_judged() -> None:
    base = [period(f"q{i}", 2) for i in range(10)] + [period("x", 9)]
    again = with_population(list(base))
    # one more outlier does not move a robust median; most of the population changing does
    robust = with_population([*base[:-2], period("q8", 40), base[-1]])
    moved = with_population([period(f"q{i}", 9) for i in range(7)] + base[7:])
    h = {a.subject: a.input_hash for a in with_population(base)}
    assert {a.subject: a.input_hash for a in again} == h  # nothing moved: same hash
    assert next(a for a in robust if a.subject == "x").input_hash == h["x"]
    assert next(a for a in moved if a.subject == "x").input_hash != h["x"]
    assert robust_z(5, [0, 0, 0, 0, 0]) == 5.0  # a spread of zero floors at one unit
