"""The one interface every summary backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.redaction import Redactor


class SummarizerError(RuntimeError):
    """A summary could not be produced; recorded as a failure with this message, never faked."""


class Summarizer(ABC):
    """Turns one interaction into a redacted Summary.

    `model` and `prompt_version` are part of the cache key: change either and every
    interaction is summarized again, because the old summaries no longer describe what this
    backend would say.
    """

    name: ClassVar[str]
    prompt_version: ClassVar[str]

    def __init__(self, redactor: Redactor, model: str) -> None:
        self.redactor = redactor
        self.model = model

    @abstractmethod
    async def summarize(self, interaction: Interaction) -> Summary: ...

    async def check(self) -> None:  # noqa: B027 - nothing to check for local backends
        """Fail fast, before a run, when the backend cannot work at all (no server, no key)."""

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release clients and connections."""
