"""Trace text on a reviewer's terminal: every control character made visible.

Traces are written by whoever ran the agent, and an escape sequence in a page title or a
typed text would otherwise reach the reviewer's terminal as a command (retitle the window,
clear the screen, rewrite what a report said). Rich passes such characters through, so every
console tracewatch prints to carries a render hook that replaces them, after layout, in the
text of what is drawn; the styles rich itself emits are separate control segments and are
left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderableType, RenderResult
from rich.segment import Segment

# C0 controls except newline and tab, DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what a line appears to say.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _picture(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␛ for ESC, ␇ for BEL
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def visible(text: str) -> str:
    """The text with each control character shown as one visible symbol (one cell wide)."""
    return _CONTROL.sub(_picture, text) if _CONTROL.search(text) else text


class _Visible:
    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for seg in console.render(self.inner, options):
            if seg.control or not _CONTROL.search(seg.text):
                yield seg
            else:
                yield Segment(visible(seg.text), seg.style)


class VisibleHook:
    """A rich render hook: everything printed is drawn through `_Visible`."""

    def process_renderables(
        self, renderables: list[ConsoleRenderable]
    ) -> Iterable[ConsoleRenderable]:
        return [_Visible(r) for r in renderables]  # type: ignore[misc]


def safe_console(console: Console) -> Console:
    console.push_render_hook(VisibleHook())  # type: ignore[arg-type]
    return console
