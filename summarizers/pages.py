"""What a page is about: the one place that decides whether two visits hit the same thing."""

from __future__ import annotations


def specific_target(target: str) -> bool:
    """A page that names a thing (a thread, product, profile), not a site's function page.

    Everyone visits /login, /search or /checkout; only pages that identify something
    (two or more path segments, or a slug with digits or separators) say two accounts went
    after the same target.
    """
    path = target.split("/", 1)[1] if "/" in target else ""
    segments = [p for p in path.split("/") if p]
    if len(segments) >= 2:
        return True
    return bool(segments) and any(c.isdigit() or c in "-_." for c in segments[0])
