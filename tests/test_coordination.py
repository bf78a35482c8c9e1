"""Coordination on small corpora built here: each mechanism of the campaign step on its own.

Every corpus has a population around the ring (readers of the same stories, fans of the same
product, people liking posts), because what the step weighs is behaviour against what the
same population does by chance.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from agent_traces import body, click, comment, envelope, run, sign_in, visit

from tracewatch.monitor.coordination import clique_weights, communities, narrative_ties

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
WORDS = [
    "garden",
    "weather",
    "bus",
    "library",
    "school",
    "coffee",
    "bridge",
    "market",
    "river",
    "festival",
    "budget",
    "parking",
    "museum",
    "bakery",
    "trail",
    "soccer",
    "concert",
    "harbor",
    "theater",
    "bicycle",
    "council",
    "hospital",
    "recycling",
    "playground",
    "orchestra",
    "ferry",
    "lantern",
    "vineyard",
    "quarry",
    "meadow",
    "pottery",
    "chess",
    "marathon",
]


def _own_words(rng: random.Random) -> str:
    """A reader's comment in their own words: a sentence nobody else writes."""
    picks = rng.sample(WORDS, 6)
    return (
        f"I think the {picks[0]} and the {picks[1]} matter more here, "
        f"my {picks[2]} friends say the {picks[3]} was fine but the {picks[4]} near the "
        f"{picks[5]} needs work."
    )


def _flagged_campaigns(db: Path, rubric: str) -> list[list[str]]:
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT accounts FROM verdicts WHERE aggregate_kind = 'campaign' AND flagged"
        " AND rubric_id = ?",
        [rubric],
    ).fetchall()
    con.close()
    return [sorted(json.loads(r[0]) if isinstance(r[0], str) else r[0]) for r in rows]


# The ring's talking points, paraphrased: openings, places and asides recombined so that no
# two posts share more than one piece (a Latin square), which keeps every pair of posts well
# under the near-duplicate bar while all of them name the same rare measure, street, sum and
# councillor.
_OPEN = [
    "Measure 7 would add $41 a month",
    "Under Measure 7 we pay $41 more monthly",
    "$41 every month is what Measure 7 really costs",
    "Measure 7 quietly tacks $41 onto each monthly bill",
]
_WHERE = [
    "for Orchard Street households",
    "on Orchard Street of all places",
    "for the families along Orchard Street",
    "to every single Orchard Street home",
]
_ASIDE = [
    "and Halvorsen will not explain it.",
    "while councillor Halvorsen stays silent.",
    "so go ask Halvorsen why.",
    "which is why I am telling Halvorsen no.",
]
RING_TALKING_POINTS = [
    f"{_OPEN[i]} {_WHERE[j]}, {_ASIDE[(i + j) % 4]}" for i in range(4) for j in range(4)
]


def test_a_paraphrasing_persona_ring_is_caught_and_readers_of_the_same_stories_are_not(
    tmp_path: Path,
) -> None:
    rng = random.Random(5)
    stories = [
        "https://valleyledger.example/news/2026/10/05/council-weighs-water-bond",
        "https://valleyledger.example/news/2026/10/06/what-the-bond-means-for-bills",
    ]
    envs = []
    ring = [f"ring-{i}" for i in range(4)]
    points = iter(RING_TALKING_POINTS)
    for n, account in enumerate(ring):
        personas = [(f"voter{n}{k}x", f"Pw{n}{k}!secret") for k in range(2)]
        for day, story in enumerate(stories):
            for user, pw in personas:
                at = T0 + timedelta(days=day, hours=n, minutes=rng.randrange(50))
                steps = visit(story, "Local news") + sign_in(user, pw) + comment(next(points))
                envs.append(envelope(account, at, body("Post my comment.", steps, "Posted.")))
    readers = [f"reader-{i}" for i in range(16)]
    for n, account in enumerate(readers):
        for k in range(3):
            # three readers comment under the ring's stories too, in their own words
            story = stories[k % 2] if n < 3 and k < 2 else f"https://news{n}.example/a/{k}-{n}"
            at = T0 + timedelta(days=k, hours=rng.randrange(12))
            steps = (
                visit(story, "News")
                + sign_in(f"reader{n}", f"Rd{n}!pass99")
                + comment(_own_words(rng))
            )
            envs.append(envelope(account, at, body("Comment on this.", steps, "Posted.")))
    db = run(tmp_path, envs)
    assert _flagged_campaigns(db, "coordinated-inauthentic-behaviour") == [ring]


def test_a_popular_product_mentioned_by_unrelated_people_does_not_tie_them() -> None:
    rng = random.Random(3)
    posts = {
        f"fan-{i}": [f"Got the Zenkettle Pro last week. {_own_words(rng)}" for _ in range(3)]
        for i in range(14)
    }
    ring = {f"ring-{i}": [RING_TALKING_POINTS[(i + k) % 8] for k in range(3)] for i in range(3)}
    ties = narrative_ties({**posts, **ring})
    assert ties, "the ring's shared rare wording must tie its members"
    assert all(a.startswith("ring-") and b.startswith("ring-") for a, b in ties)
    assert len(ties) == 3


def test_a_bridge_account_does_not_merge_two_rings() -> None:
    weights: dict[tuple[str, str], float] = {}
    clique_weights(
        [([f"a{i}" for i in range(4)], 1.0), ([f"b{i}" for i in range(4)], 1.0)], weights
    )
    # one account with one strong-enough tie into each ring, as a shared common password or a
    # popular page would give it
    weights["a0", "bridge"] = 1.0
    weights["b0", "bridge"] = 1.0
    weights["a3", "b3"] = 1.0  # and one direct bridge between two members
    groups = communities(weights)
    assert groups == [[f"a{i}" for i in range(4)], [f"b{i}" for i in range(4)]]


def test_accounts_engaging_the_same_posts_together_are_a_campaign(tmp_path: Path) -> None:
    rng = random.Random(9)
    posts = [f"https://chirp.example/brandx/status/{n}" for n in (1001, 1002, 1003)]
    envs = []
    pod = [f"pod-{i}" for i in range(4)]
    for day, post in enumerate(posts):
        for n, account in enumerate(pod):
            at = T0 + timedelta(days=day, minutes=3 * n)
            steps = (
                visit(post, "Post") + click("Liked · 1,204") + click("Reposted to your timeline")
            )
            envs.append(envelope(account, at, body("Like and repost this.", steps, "Done.")))
    for n in range(14):
        for k in range(3):
            at = T0 + timedelta(days=k, hours=rng.randrange(3, 20))
            post = f"https://chirp.example/user{n}/status/{k}{n}"
            steps = visit(post, "Post") + click("Liked · 3")
            envs.append(envelope(f"fan-{n}", at, body("Like my friend's post.", steps, "Done.")))
    db = run(tmp_path, envs)
    assert _flagged_campaigns(db, "coordinated-engagement") == [pod]


def test_accounts_shipping_to_one_drop_address_are_tied(tmp_path: Path) -> None:
    """Resellers buying under different logins but shipping to one address."""
    envs = []
    ring = [f"buyer-{i}" for i in range(3)]
    for n, account in enumerate(ring):
        for k in range(2):
            at = T0 + timedelta(days=k, hours=n)
            steps = visit(f"https://shop.example/p/console-{k}", "Console") + [
                ({"action": "type", "text": "77 Quarry Lane"}, "ok", None),
                ({"action": "left_click", "coordinate": [5, 5]}, "Order placed", None),
            ]
            envs.append(envelope(account, at, body("Buy it.", steps, "Order placed.")))
    for n in range(8):
        at = T0 + timedelta(hours=n)
        steps = visit(f"https://shop.example/p/kettle-{n}", "Kettle") + [
            ({"action": "type", "text": f"{n + 10} Birch Road"}, "ok", None),
            ({"action": "left_click", "coordinate": [5, 5]}, "Order placed", None),
        ]
        envs.append(envelope(f"shopper-{n}", at, body("Buy it.", steps, "Order placed.")))
    db = run(tmp_path, envs)
    con = duckdb.connect(str(db), read_only=True)
    groups = [
        sorted(r[0])
        for r in con.execute("SELECT accounts FROM aggregates WHERE kind = 'campaign'").fetchall()
    ]
    con.close()
    assert ring in groups and not any(a.startswith("shopper") for g in groups for a in g)


def test_the_median_with_counted_zeros_is_the_median_of_the_listed_ones() -> None:
    import statistics

    import numpy as np

    from tracewatch.monitor.coordination import median_with

    rng = random.Random(3)
    for _ in range(300):
        values = [round(rng.random(), rng.choice([1, 3, 6])) for _ in range(rng.randint(1, 40))]
        zeros = rng.randint(0, 60)
        listed = values + [0.0] * zeros
        med = statistics.median(listed)
        assert median_with(np.sort(np.array(values)), 0.0, zeros) == med
        spread = [abs(v - med) for v in listed]
        assert median_with(np.sort(np.abs(np.array(values) - med)), med, zeros) == (
            statistics.median(spread)
        )


def test_near_duplicate_pairs_in_numpy_are_the_pairs_compared_one_by_one() -> None:
    from tracewatch.monitor.near_duplicates import PAIR_BLOCK, linked_pairs
    from tracewatch.summarizers.fingerprints import minhash_similarity

    rng = random.Random(5)
    base = [rng.getrandbits(63) for _ in range(64)]
    # signatures that agree with a template in some share of their positions, by 12 owners
    shares = [rng.choice([0.3, 0.6, 0.95]) for _ in range(120)]
    sigs = [[x if rng.random() < p else rng.getrandbits(63) for x in base] for p in shares]
    owners = [rng.randrange(12) for _ in sigs]
    buckets = [rng.sample(range(120), rng.randint(1, 30)) for _ in range(40)]
    buckets.append(list(range(120)))  # one bucket of everyone
    brute = sorted(
        {
            (min(a, b), max(a, b))
            for m in buckets
            for x, a in enumerate(m)
            for b in m[x + 1 :]
            if owners[a] != owners[b] and minhash_similarity(sigs[a], sigs[b]) >= 0.6
        }
    )
    assert brute, "the signatures must hold some near-duplicates"
    assert sorted(linked_pairs(sigs, owners, buckets, 0.6)) == brute
    import tracewatch.monitor.near_duplicates as nd

    nd.PAIR_BLOCK = 50  # a bucket of 120 is then compared row by row
    try:
        assert sorted(linked_pairs(sigs, owners, buckets, 0.6)) == brute
    finally:
        nd.PAIR_BLOCK = PAIR_BLOCK
