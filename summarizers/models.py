"""What a summary of one interaction holds.

The text is for people; the facets are for aggregation, which must count, group and compare
across thousands of interactions without re-reading them. Every string here has already been
through redaction: identities appear only as keyed pseudonyms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TransactionKind = Literal[
    "signup",
    "login",
    "purchase",
    "review",
    "post",
    "message",
    "follow",
    "like",
    "upvote",
    "share",
    "search",
    "form_submit",
    "payment",
    "download",
    "listing",
    "coupon",
    "other",
]
Outcome = Literal["success", "failure", "unknown"]


class PostedContent(BaseModel):
    """Text the agent published or sent, with fingerprints that survive light rewording."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="redacted, at most 500 characters")
    target: str | None = Field(None, description="domain or page it went to")
    simhash: str = Field(description="64-bit SimHash of word 3-shingles, 16 hex digits")
    minhash: list[int] = Field(description="MinHash signature of word 3-shingles")


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TransactionKind
    target: str | None = None
    outcome: Outcome = "unknown"
    quantity: int | None = None
    rating: float | None = None
    item: str | None = None


class Facets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str | None = None
    domains: list[str] = Field(default_factory=list)
    targets: list[str] = Field(
        default_factory=list, description="pages (host/path), items, profiles"
    )
    actions: dict[str, int] = Field(default_factory=dict)
    identities: list[str] = Field(default_factory=list, description="pseudonyms of identities used")
    posted: list[PostedContent] = Field(default_factory=list)
    transactions: list[Transaction] = Field(default_factory=list)
    refusals: int = 0
    errors: int = 0
    error_messages: list[str] = Field(default_factory=list)
    risk_cues: list[str] = Field(default_factory=list)
    personal_data: int = Field(
        0, description="distinct emails, phones and addresses read or written, not used as login"
    )
    contacts: list[str] = Field(
        default_factory=list,
        description="pseudonyms of the addresses and cards the agent typed into forms",
    )
    n_steps: int = 0
    duration_s: float | None = None


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_hash: str
    backend: str
    model: str
    prompt_version: str
    text: str
    facets: Facets
    tokens_in: int = 0
    tokens_out: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
