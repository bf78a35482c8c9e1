"""Texts cut to a budget before any pattern reads them.

What a summary says about a step is in its first few thousand characters; a megabyte-long
word or a pasted log adds nothing to it, but every pattern run over it costs time in
proportion (and a pattern with a super-linear case costs far more). So each text field is cut
to `TEXT_BUDGET` characters, with a visible marker of what was cut, before the reader, the
redactor or a prompt sees it. The interaction's content hash is its stored one, so the cut
changes no cache key.
"""

from __future__ import annotations

from typing import Any

from tracewatch.monitor.models import Interaction, Step

TEXT_BUDGET = 20_000


def cut(text: str, budget: int = TEXT_BUDGET) -> str:
    if len(text) <= budget:
        return text
    return f"{text[:budget]}… [{len(text) - budget} more chars cut before reading]"


def _cut_value(value: Any) -> Any:
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, dict):
        return {k: _cut_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_value(v) for v in value]
    return value


def _over(s: Step) -> bool:
    for v in (s.text, s.result, s.target_url, s.target_app):
        if v is not None and len(v) > TEXT_BUDGET:
            return True
    if s.arguments:
        return any(isinstance(v, str) and len(v) > TEXT_BUDGET for v in s.arguments.values()) or (
            len(str(s.arguments)) > TEXT_BUDGET
        )
    return False


def within_budget(inter: Interaction) -> Interaction:
    """The interaction with every over-long text cut; itself when nothing is over."""
    if not any(_over(s) for s in inter.steps):
        return inter
    steps = []
    for s in inter.steps:
        if not _over(s):
            steps.append(s)
            continue
        update: dict[str, Any] = {
            k: cut(v)
            for k in ("text", "result", "target_url", "target_app")
            if (v := getattr(s, k)) is not None
        }
        if s.arguments:
            update["arguments"] = _cut_value(s.arguments)
        steps.append(s.model_copy(update=update))
    return inter.model_copy(update={"steps": steps})
