"""The numpy fingerprints are the formulas of their docstrings, bit for bit: a stored
fingerprint (and every campaign found from stored ones) must not move when the arithmetic is
vectorized. The reference here is the formula written out one bit and one permutation at a
time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tracewatch.summarizers.fingerprints import (
    _MASK64,
    MINHASH_PERMUTATIONS,
    _h64,
    minhash,
    shingles,
    simhash,
)


def simhash_by_bits(text: str) -> str:
    weights = [0] * 64
    for sh in shingles(text):
        h = _h64(sh)
        for bit in range(64):
            weights[bit] += 1 if h >> bit & 1 else -1
    return f"{sum(1 << bit for bit in range(64) if weights[bit] > 0):016x}"


def minhash_by_permutation(text: str) -> list[int]:
    sh = shingles(text)
    if not sh:
        return [_MASK64] * MINHASH_PERMUTATIONS
    base = [_h64(s) for s in sh]
    out = []
    for i in range(MINHASH_PERMUTATIONS):
        a = (_h64(str(i), b"a") | 1) & _MASK64
        b = _h64(str(i), b"b")
        out.append(min(((a * x + b) & _MASK64) >> 1 for x in base))
    return out


WORDS = st.sampled_from(
    ["great", "deal", "buy", "now", "it's", "x1", "[EMAIL:0123456789]", "Ünïcode", "42", "-"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(WORDS, max_size=120).map(" ".join))
def test_fingerprints_equal_their_formulas(text: str) -> None:
    assert simhash(text) == simhash_by_bits(text)
    assert minhash(text) == minhash_by_permutation(text)


def test_an_empty_post_has_the_empty_fingerprints() -> None:
    assert simhash("") == "0" * 16
    assert minhash("") == [_MASK64] * MINHASH_PERMUTATIONS
