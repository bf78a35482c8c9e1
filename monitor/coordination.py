"""Coordination as a weighted graph of accounts, and its groups by community detection.

Why a graph and not connected components: pairwise links chain. One shared common password,
one popular product page or one stock sentence is enough to join two unrelated rings (and
the bystanders around them) into one "campaign" when every link merges whole groups. Here
each kind of evidence adds weight to the tie between two accounts, weighed against what
chance predicts for that population; groups are the communities of the weighted graph
(Leiden, modularity), so an account belongs to a group through ties to several of its
members, and one bridge between two dense groups leaves two groups.

Narrative similarity is the evidence that survives rewording: personas that each paraphrase
the same talking points share rare content words, names, numbers and link hosts, while two
people who happen to mention a popular product share only words the population uses too. It
is TF-IDF over each account's posts (scikit-learn), with document frequencies over accounts,
and a pair counts only when its similarity stands out from the population's pairs.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

# scikit-learn, igraph and leidenalg are imported where they are used: a run with no
# campaign work to do (a rerun, a tick that changed no window) does not pay for loading them.

LINK_BAR = 1.0  # a tie is an edge once its evidence adds up to this
STRONG_ALONE = 2.0  # a tie this strong keeps an account in a group through one member
NARRATIVE_MIN = 0.3  # cosine below this is never shared narrative
NARRATIVE_WEIGHT = 0.5  # never a tie alone: templated benign posters share wording too
NARRATIVE_Z = 4.0  # robust z-score of a pair's cosine over the population's posting pairs
NARRATIVE_MIN_POSTS = 2
SEED = 7


def narrative_ties(posts: dict[str, list[str]]) -> dict[tuple[str, str], float]:
    """Pairs of accounts whose posts share rare wording beyond the population, with their
    weight: half a tie, so that shared wording confirms other evidence (the same stories, the
    same minutes) and never groups accounts on its own. Templated benign posters (a support
    macro, a brand kit) share wording as much as a paraphrasing ring does."""
    accounts = sorted(a for a, texts in posts.items() if len(texts) >= NARRATIVE_MIN_POSTS)
    if len(accounts) < 2:
        return {}
    docs = [" ".join(posts[a]) for a in accounts]
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(
            sublinear_tf=True,
            min_df=2,
            max_df=max(0.3, 2 / len(accounts)) if len(accounts) >= 10 else 1.0,
            stop_words="english",
            ngram_range=(1, 2),
            token_pattern=r"(?u)(?:[@#$]?\b\w[\w'.-]*\w\b|\b\w\b)",
        )
        matrix = vec.fit_transform(docs)
    except ValueError:  # no term survives the document-frequency bounds
        return {}
    sims = (matrix @ matrix.T).tocoo()
    upper = sims.row < sims.col
    rows, cols, values = sims.row[upper], sims.col[upper], sims.data[upper].astype(np.float64)
    if not len(values):
        return {}
    n_pairs = len(accounts) * (len(accounts) - 1) // 2
    # Pairs that share no term are part of the population too: they sit at zero. They are
    # counted, not listed (a list of millions of zeros to sort was most of this step).
    zeros = n_pairs - len(values)
    med = median_with(np.sort(values), 0.0, zeros)
    mad = median_with(np.sort(np.abs(values - med)), abs(0.0 - med), zeros) * 1.4826 or 0.05
    hit = (values >= NARRATIVE_MIN) & ((values - med) / mad >= NARRATIVE_Z)
    return {
        (accounts[i], accounts[j]): NARRATIVE_WEIGHT
        for i, j in zip(rows[hit].tolist(), cols[hit].tolist(), strict=True)
    }


def median_with(ordered: np.ndarray, value: float, copies: int) -> float:
    """`statistics.median` of `ordered` (sorted) together with `copies` more of `value`,
    without making the copies."""
    below = int(np.searchsorted(ordered, value, side="left"))
    total = len(ordered) + copies

    def kth(k: int) -> float:
        if k < below:
            return float(ordered[k])
        if k < below + copies:
            return value
        return float(ordered[k - copies])

    if total % 2:
        return kth(total // 2)
    return (kth(total // 2 - 1) + kth(total // 2)) / 2


def clique_weights(
    groups: Iterable[tuple[list[str], float]], into: dict[tuple[str, str], float], cap: int = 60
) -> None:
    """Add a shared piece of evidence (accounts, weight) to every pair of its accounts; one
    shared by more than `cap` accounts ties each to the first only (a star, not a clique), so
    a text a thousand accounts share is not half a million ties."""
    for accounts, w in groups:
        names = sorted(set(accounts))
        if len(names) > cap:
            pairs: Iterable[tuple[str, str]] = ((names[0], b) for b in names[1:])
        else:
            pairs = ((a, b) for k, a in enumerate(names) for b in names[k + 1 :])
        for pair in pairs:
            into[pair] = into.get(pair, 0.0) + w


def communities(weights: dict[tuple[str, str], float]) -> list[list[str]]:
    """Groups of two or more accounts: Leiden communities of the ties at or above the bar,
    less members held by a single tie to one member (unless that tie is very strong)."""
    edges = [(a, b, w) for (a, b), w in sorted(weights.items()) if w >= LINK_BAR - 1e-9]
    if not edges:
        return []
    nodes = sorted({x for a, b, _ in edges for x in (a, b)})
    index = {n: i for i, n in enumerate(nodes)}
    import igraph as ig
    import leidenalg

    g = ig.Graph(n=len(nodes), edges=[(index[a], index[b]) for a, b, _ in edges])
    g.es["weight"] = [w for _, _, w in edges]
    part = leidenalg.find_partition(
        g, leidenalg.ModularityVertexPartition, weights="weight", seed=SEED, n_iterations=-1
    )
    out = []
    for community in part:
        members = set(community)
        changed = True
        while changed and len(members) > 2:
            changed = False
            for v in sorted(members):
                ties = [g.es[g.get_eid(v, u)]["weight"] for u in g.neighbors(v) if u in members]
                if len(ties) < 2 and max(ties, default=0.0) < STRONG_ALONE:
                    members.discard(v)
                    changed = True
        if len(members) >= 2:
            out.append(sorted(nodes[i] for i in members))
    return sorted(out, key=lambda c: (-len(c), c))
