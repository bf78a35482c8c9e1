"""What a rubric says, and what a judge answers.

A rubric is data, not code: reviewers and policy people read and change it, and a user adds
one by dropping a file in a folder. It names the harm, the benign look-alikes a judge must
weigh, the evidence a verdict must cite, and the deterministic signals (with the values at
which each starts and stops counting) that let the embedded judge work without a model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HarmDimension = Literal["physical", "psychological", "economic", "societal", "individual_autonomy"]
Severity = Literal["low", "medium", "high", "critical"]
SEVERITY_WEIGHT: dict[str, float] = {"low": 1.0, "medium": 2.0, "high": 3.0, "critical": 4.0}
AggregateKindName = Literal["account_window", "account_period", "campaign"]
EvidenceSource = Literal[
    "content",
    "targets",
    "profile_targets",
    "identities",
    "transactions",
    "risk_cues",
    "links",
    "personal_data",
]


class SignalRule(BaseModel):
    """One deterministic signal: 0 at `start`, rising linearly to 1 at `full`.

    `full` below `start` reads the other way (a low inter-arrival variation is the suspicious
    end). A `required` signal multiplies the score instead of adding to it: a rubric about
    many identities scores nothing on an account that used one.
    """

    model_config = ConfigDict(extra="forbid")

    signal: str = Field(min_length=1, description="a key of the aggregate's signals")
    start: float
    full: float
    weight: float = Field(1.0, gt=0)
    required: bool = False
    why: str = Field("", description="what this signal means for this harm, for reviewers")

    @model_validator(mode="after")
    def _distinct(self) -> SignalRule:
        if self.start == self.full:
            raise ValueError("start and full must differ")
        return self

    def satisfaction(self, value: Any) -> float:
        if value is None or isinstance(value, bool | str):
            return 0.0
        x = (float(value) - self.start) / (self.full - self.start)
        return min(1.0, max(0.0, x))


class Lookalike(BaseModel):
    """A benign pattern that resembles the harm, and the signals that tell it apart."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    signals: list[SignalRule] = Field(
        default_factory=list,
        description="each satisfied signal lowers the score by its weight (at most to zero)",
    )


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    category: str = Field(min_length=1)
    harm_dimensions: list[HarmDimension] = Field(min_length=1)
    level: Literal["aggregate", "interaction"] = Field(
        description="aggregate: shows only across many interactions; interaction: one shows it"
    )
    applies_to: list[AggregateKindName] = Field(min_length=1)
    severity: Severity
    description: str = Field(min_length=1, description="what the harm looks like in aggregate")
    benign_lookalikes: list[Lookalike] = Field(min_length=1)
    evidence_required: list[str] = Field(
        min_length=1, description="what a verdict must cite, in words, for the LLM judge"
    )
    evidence_sources: list[EvidenceSource] = Field(
        min_length=1, description="where the signal judge takes its cited interactions from"
    )
    signals: list[SignalRule] = Field(min_length=1)
    combine: Literal["mean", "max"] = Field(
        "mean",
        description="mean: the scoring signals' weighted mean (evidence that adds up); max: the "
        "strongest one, weighted against the heaviest (alternative ways one interaction shows "
        "the harm, none of which should dilute another)",
    )
    threshold: float = Field(
        0.5, gt=0, le=1, description="flag at or above this score unless calibrated"
    )

    @field_validator("signals")
    @classmethod
    def _some_scoring(cls, v: list[SignalRule]) -> list[SignalRule]:
        if all(s.required for s in v):
            raise ValueError("at least one signal must not be `required` (it carries the score)")
        return v


class Calibration(BaseModel):
    """A threshold chosen on a labelled corpus, valid only for the rubric version it was set on."""

    model_config = ConfigDict(extra="forbid")

    rubric_id: str
    rubric_version: int
    judge: str
    threshold: float
    target_fpr: float
    fpr: float = Field(description="false-positive rate at this threshold on the corpus")
    recall: float
    corpus: str = Field(description="how the corpus was made, e.g. generate --seed 3")
    calibrated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Quote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_id: str
    text: str = Field(description="redacted, at most 200 characters")


class Verdict(BaseModel):
    """One judge's answer for one aggregate and one rubric; names everything that produced it."""

    model_config = ConfigDict(extra="forbid")

    verdict_id: str
    aggregate_id: str
    aggregate_kind: AggregateKindName
    input_hash: str
    subject: str
    accounts: list[str]
    window: str
    window_start: datetime
    window_end: datetime
    rubric_id: str
    rubric_version: int
    severity: Severity
    judge: str
    model: str
    threshold: float
    threshold_source: Literal["calibrated", "rubric default"]
    score: float = Field(ge=0, le=1)
    flagged: bool
    confidence: float = Field(ge=0, le=1)
    rationale: str
    evidence: list[str] = Field(description="interaction ids the verdict cites")
    quotes: list[Quote] = Field(default_factory=list)
    signals: dict[str, Any] = Field(
        default_factory=dict, description="the signal values the verdict rests on"
    )
    reach: int = Field(0, description="interactions in the aggregate")
    stage: Literal["signals", "llm"] = Field(
        "signals", description="which judge decided: the cascade's screen or its model"
    )
    tokens_in: int = 0
    tokens_out: int = 0
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
