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
from collections.abc import Sequence

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
