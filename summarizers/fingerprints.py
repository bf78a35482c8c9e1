"""Near-duplicate fingerprints of posted text: SimHash and MinHash over word 3-shingles.

Campaigns rarely post byte-identical text; they post templates with a name or a link swapped.
Both fingerprints stay close under such edits, and both are tiny, so the rollup can group
thousands of posts without comparing the texts themselves.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

import numpy as np

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


_BITS = np.arange(64, dtype=np.uint64)


def simhash(text: str) -> str:
    hashes = np.array([_h64(sh) for sh in shingles(text)], dtype=np.uint64)
    # each bit votes +1 where a shingle's hash has it set, -1 where not
    ones = ((hashes[:, None] >> _BITS) & np.uint64(1)).sum(axis=0, dtype=np.int64)
    value = sum(1 << bit for bit in np.flatnonzero(2 * ones > len(hashes)).tolist())
    return f"{value:016x}"


@cache
def _permutations(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The universal-hash parameters (a odd, b) of each of `n` permutations, derived once."""
    a = np.array([(_h64(str(i), b"a") | 1) & _MASK64 for i in range(n)], dtype=np.uint64)
    b = np.array([_h64(str(i), b"b") for i in range(n)], dtype=np.uint64)
    return a, b


def minhash(text: str, permutations: int = MINHASH_PERMUTATIONS) -> list[int]:
    sh = shingles(text)
    if not sh:
        return [_MASK64] * permutations
    # One 64-bit hash per shingle, then cheap universal-hash permutations of it: uint64
    # arithmetic wraps, which is the mod 2**64 of the formula.
    base = np.array([_h64(s) for s in sh], dtype=np.uint64)
    a, b = _permutations(permutations)
    with np.errstate(over="ignore"):
        values = (a[:, None] * base[None, :] + b[:, None]) >> np.uint64(1)
    return values.min(axis=1).tolist()


def simhash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def minhash_similarity(a: list[int], b: list[int]) -> float:
    if not a or len(a) != len(b):
        return 0.0
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
