"""Every module-level pattern that reads trace text, timed on adversarial input at two sizes:
a pattern whose time grows much faster than its input (backtracking over a long word) fails.

Linear growth is 8x for 8x the input; quadratic is 64x. The bar sits between them, and only
patterns that take measurable time at the larger size are judged, so timer noise on a busy
machine does not decide."""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("monitor", "summarizers", "trace_adapters", "rubrics")
UNITS = ["a", "A", "1", "a.", "a-", "a ", "1 ", "1-", "a@", "a/", "-", ".", "a1", "@a.",
         "http://a", "x=", "a_", "Aa1-", "aa.b", "%", "\\", '"', "a:"]  # fmt: skip
SMALL, LARGE = 2_000, 16_000


def _patterns() -> list[tuple[str, re.Pattern]]:
    found: dict[int, tuple[str, re.Pattern]] = {}
    for folder in FOLDERS:
        for f in sorted((ROOT / folder).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            name = "tracewatch." + ".".join(rel.parts)
            if name.endswith("__init__") or "ray_engine" in name or "vllm" in name:
                continue
            mod = importlib.import_module(name)
            for attr, value in vars(mod).items():
                values = value if isinstance(value, list | tuple | frozenset | set) else [value]
                if isinstance(value, dict):
                    values = [*value.keys(), *value.values()]
                for v in values:
                    for p in v if isinstance(v, tuple | list) else [v]:
                        if isinstance(p, re.Pattern):
                            found.setdefault(id(p), (f"{name}.{attr}", p))
    return sorted(found.values(), key=lambda x: x[0])


def _time(p: re.Pattern, text: str) -> float:
    subject: str | bytes = text.encode() if isinstance(p.pattern, bytes) else text
    t0 = time.perf_counter()
    for _ in p.finditer(subject):  # type: ignore[arg-type]
        pass
    return time.perf_counter() - t0


PATTERNS = _patterns()


def test_the_scan_finds_the_patterns() -> None:
    assert len(PATTERNS) > 50  # the scan itself must not silently find nothing


@pytest.mark.parametrize("name,pattern", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_pattern_is_linear_on_long_words(name: str, pattern: re.Pattern) -> None:
    for unit in UNITS:
        small = _time(pattern, unit * (SMALL // len(unit)))
        large = _time(pattern, unit * (LARGE // len(unit)))
        if large > 0.05 and large > 24 * max(small, 1e-4):
            pytest.fail(f"{name} on {unit!r} x {LARGE}: {large:.3f}s, {large / small:.0f}x")
