"""Stable ids for verdicts, so a re-run replaces a verdict instead of adding a second one."""

from __future__ import annotations

import hashlib


def verdict_id(aggregate_id: str, rubric_id: str, judge: str) -> str:
    raw = "\x1f".join((aggregate_id, rubric_id, judge)).encode()
    return "v-" + hashlib.blake2b(raw, digest_size=10).hexdigest()
