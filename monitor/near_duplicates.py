"""Grouping near-duplicate texts by MinHash LSH and union-find.

Comparing every pair of posts is quadratic; banding the MinHash signature (b bands of r rows)
puts two texts in a shared bucket with probability 1 - (1 - s^r)^b for Jaccard similarity s,
so only bucket-mates are compared. With 64 permutations as 16 bands of 4 rows the curve rises
at s ~ 0.5: templated posts with a name or link swapped (s ~ 0.7-0.9) almost always collide;
unrelated texts (s < 0.2) almost never do. Candidates are then confirmed on the signature at
0.6: with 64 permutations the estimate's spread is about 0.06, so two people who happen to
write a similar sentence (s ~ 0.3) are not merged, while a template with a few words swapped
is. Heavier rewording (spun text, s < 0.5) is not caught here; that is a known limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from tracewatch.summarizers.fingerprints import MINHASH_PERMUTATIONS, minhash_similarity

BANDS = 16
ROWS = MINHASH_PERMUTATIONS // BANDS
SIMILARITY = 0.6
# A bucket holding more texts than this is a stock phrase, not a campaign; it is not expanded
# pairwise (that would be quadratic), its members are compared to its first one only.
MAX_BUCKET = 200


def band_keys(signature: Sequence[int]) -> list[str]:
    """One key per band; two signatures that agree on a whole band share that key."""
    keys = []
    for b in range(BANDS):
        chunk = ",".join(str(x) for x in signature[b * ROWS : (b + 1) * ROWS])
        keys.append(f"{b}:{hashlib.blake2b(chunk.encode(), digest_size=8).hexdigest()}")
    return keys


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller index becomes the root, so results do not depend on visit order.
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


# Candidate pairs held at once (8 bytes each), and compared per numpy step: two signatures of
# 64 uint64 per pair, so a step of 2^14 pairs gathers 16 MiB.
PAIR_BLOCK = 1 << 21
COMPARE_BLOCK = 1 << 14


def _bucket_pairs(members: np.ndarray, owners: np.ndarray, n: int) -> Iterator[np.ndarray]:
    """Codes (a * n + b, a < b) of a bucket's pairs whose signatures belong to different
    owners; a huge bucket row by row, so its pairs are never all made at once."""
    size = len(members)
    if size * (size - 1) // 2 <= PAIR_BLOCK:
        i, j = np.triu_indices(size, 1)
        rows = [(members[i], members[j])]
    else:
        rows = ((np.full(size - r - 1, members[r]), members[r + 1 :]) for r in range(size - 1))
    for a, b in rows:
        cross = owners[a] != owners[b]
        yield np.minimum(a, b)[cross] * n + np.maximum(a, b)[cross]


def linked_pairs(
    signatures: Sequence[Sequence[int]] | np.ndarray,
    owners: Sequence[int],
    buckets: Iterable[Sequence[int]],
    threshold: float = SIMILARITY,
) -> list[tuple[int, int]]:
    """Every pair (a < b) of signatures that share a bucket, belong to different owners and
    are at least `threshold` similar, each pair once.

    The same comparisons as `minhash_similarity` pair by pair, in numpy: a corpus's
    LSH buckets hold hundreds of thousands of candidate pairs, many of them in several
    buckets, and comparing them one by one in Python was most of a campaign pass."""
    n = len(signatures)
    if n < 2:
        return []
    if isinstance(signatures, np.ndarray):
        width = {signatures.shape[1]} if signatures.ndim == 2 else set()
    else:
        width = {len(s) for s in signatures}
    if len(width) != 1 or 0 in width:  # not one signature length: compare them one by one
        return sorted(
            {
                (min(a, b), max(a, b))
                for m in buckets
                for x, a in enumerate(m)
                for b in m[x + 1 :]
                if owners[a] != owners[b]
                and minhash_similarity(signatures[a], signatures[b]) >= threshold
            }
        )
    sigs = np.asarray(signatures, dtype=np.uint64)
    own = np.asarray(owners, dtype=np.int64)
    k = sigs.shape[1]
    found: set[tuple[int, int]] = set()

    def compare(codes: list[np.ndarray]) -> None:
        # a pair in several buckets of this part is compared once; one in two parts, twice
        unique = np.unique(np.concatenate(codes))
        for start in range(0, len(unique), COMPARE_BLOCK):
            block = unique[start : start + COMPARE_BLOCK]
            a, b = block // n, block % n
            same = (sigs[a] == sigs[b]).sum(axis=1)
            hit = same / k >= threshold  # the float minhash_similarity computes
            found.update(zip(a[hit].tolist(), b[hit].tolist(), strict=True))

    part: list[np.ndarray] = []
    held = 0
    for m in buckets:
        if len(m) < 2:
            continue
        for block in _bucket_pairs(np.asarray(m, dtype=np.int64), own, n):
            part.append(block)
            held += len(block)
            if held >= PAIR_BLOCK:
                compare(part)
                part, held = [], 0
    if part:
        compare(part)
    return sorted(found)


def cluster(signatures: Sequence[Sequence[int]], threshold: float = SIMILARITY) -> list[list[int]]:
    """Indexes of signatures grouped by near-duplication, each group in ascending order."""
    uf = UnionFind(len(signatures))
    buckets: dict[str, list[int]] = {}
    for i, sig in enumerate(signatures):
        for key in band_keys(sig):
            buckets.setdefault(key, []).append(i)
    for members in buckets.values():
        if len(members) < 2:
            continue
        if len(members) > MAX_BUCKET:
            first = members[0]
            for j in members[1:]:
                if minhash_similarity(signatures[first], signatures[j]) >= threshold:
                    uf.union(first, j)
            continue
        for a_pos, a in enumerate(members):
            for b in members[a_pos + 1 :]:
                if uf.find(a) != uf.find(b) and (
                    minhash_similarity(signatures[a], signatures[b]) >= threshold
                ):
                    uf.union(a, b)
    return uf.groups()
