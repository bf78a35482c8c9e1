"""The default backend: deterministic, no model, no GPU, no key, no network.

Facets come from the canonical steps (summarizers/facets.py) and the text from a template, so
the whole monitor runs anywhere and the same input always gives the same summary. Text inside
the trace is only ever counted, fingerprinted and quoted after redaction; no instruction in it
can change what is extracted.
"""

from __future__ import annotations

from tracewatch.monitor.models import Interaction
from tracewatch.summarizers.base import Summarizer
from tracewatch.summarizers.budget import within_budget
from tracewatch.summarizers.facets import extract, template_text
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.secrets import scoped


class EmbeddedSummarizer(Summarizer):
    name = "embedded"
    prompt_version = "embedded-v6"  # v6: texts cut to a budget, linear patterns

    async def summarize(self, interaction: Interaction) -> Summary:
        return self.summarize_sync(interaction)

    def summarize_sync(self, interaction: Interaction) -> Summary:
        interaction = within_budget(interaction)
        redactor = scoped(self.redactor, interaction)  # its secrets, collected once
        facets = extract(interaction, redactor)
        return Summary(
            content_hash=interaction.content_hash,
            backend=self.name,
            model=self.model,
            prompt_version=self.prompt_version,
            text=template_text(interaction, facets, redactor),
            facets=facets,
        )
