"""Near-duplicate fingerprints of posted text: SimHash and MinHash over word 3-shingles.

Campaigns rarely post byte-identical text; they post templates with a name or a link swapped.
Both fingerprints stay close under such edits, and both are tiny, so the rollup can group
thousands of posts without comparing the texts themselves.
"""

from __future__ import annotations

import hashlib
import re

MINHASH_PERMUTATIONS = 64
_WORD = re.compile(r"\[[A-Z]+:[0-9a-f]+\]|[a-z0-9']+")
_MASK64 = (1 << 64) - 1


def shingles(text: str, k: int = 3) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def _h64(data: str, salt: bytes = b"") -> int:
    return int.from_bytes(hashlib.blake2b(data.encode(), digest_size=8, salt=salt).digest(), "big")


def simhash(text: str) -> str:
    weights = [0] * 64
    for sh in shingles(text):
        h = _h64(sh)
        for bit in range(64):
            weights[bit] += 1 if h >> bit & 1 else -1
    value = sum(1 << bit for bit in range(64) if weights[bit] > 0)
    return f"{value:016x}"


def minhash(text: str, permutations: int = MINHASH_PERMUTATIONS) -> list[int]:
    sh = shingles(text)
    if not sh:
        return [_MASK64] * permutations
    # One 64-bit hash per shingle, then cheap universal-hash permutations of it.
    base = [_h64(s) for s in sh]
    sig = []
    for i in range(permutations):
        a = (_h64(str(i), b"a") | 1) & _MASK64
        b = _h64(str(i), b"b")
        sig.append(min(((a * x + b) & _MASK64) >> 1 for x in base))
    return sig


def simhash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def minhash_similarity(a: list[int], b: list[int]) -> float:
    if not a or len(a) != len(b):
        return 0.0
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
