"""What each report holds, as plain models: the same data feeds the terminal and `--json`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from tracewatch.monitor.decisions import RubricPrecision

# Every time a report shows or prints is UTC, whatever zone the database session hands back.
Utc = Annotated[datetime, AfterValidator(lambda dt: dt.astimezone(UTC))]


class HourBin(BaseModel):
    hour: Utc
    n: int


class Timeline(BaseModel):
    """Activity per hour over a span, for a sparkline row per day."""

    start: Utc
    end: Utc
    total: int = 0
    busiest_hour: int = Field(0, description="most interactions in one hour")
    hours: list[HourBin] = Field(default_factory=list, description="only hours with activity")


class EvidenceRow(BaseModel):
    interaction_id: str
    account: str | None = None
    at: Utc | None = None
    site: str | None = Field(None, description="the domain or page the evidence happened on")
    excerpt: str = Field("", description="redacted text that supports the claim")
    quoted: bool = Field(False, description="the verdict quoted this excerpt itself")


class DuplicateGroup(BaseModel):
    copies: int
    sites: int
    accounts: int
    text: str
    interaction_ids: list[str] = Field(default_factory=list)


class MemberRow(BaseModel):
    account: str
    interactions: int
    named: bool = Field(description="the verdict names this account as behind its evidence")
    ties: dict[str, int] = Field(default_factory=dict, description="links by kind")


class LinkRow(BaseModel):
    kind: str
    key: str
    accounts: list[str]
    interaction_ids: list[str] = Field(default_factory=list)


class AuditRow(BaseModel):
    at: Utc
    actor: str
    event: str
    from_status: str | None = None
    to_status: str | None = None
    note: str | None = None


class CaseReport(BaseModel):
    case_id: str
    status: str
    subject_type: str
    subject: str
    accounts: list[str]
    window: str
    window_start: Utc
    window_end: Utc
    rubric: str
    rubric_version: int
    severity: str
    score: float
    threshold: float
    calibrated: bool | None = None
    confidence: float
    priority: float
    judge: str
    model: str
    reviewer: str | None = None
    action: str | None = None
    note: str | None = None
    rationale: str
    signals: dict[str, Any] = Field(default_factory=dict)
    summary: str = Field("", description="the aggregate's summary text")
    summary_levels: int = 0
    interactions: int = 0
    evidence: list[EvidenceRow] = Field(default_factory=list)
    timeline: Timeline | None = None
    duplicate_groups: list[DuplicateGroup] = Field(default_factory=list)
    members: list[MemberRow] = Field(default_factory=list)
    links: list[LinkRow] = Field(default_factory=list)
    audit: list[AuditRow] = Field(default_factory=list)


class StepRow(BaseModel):
    index: int
    at: Utc | None = None
    actor: str
    kind: str
    what: str = Field(description="tool and action")
    target: str | None = None
    detail: str = Field("", description="redacted text, typed text or arguments")
    result: str | None = Field(None, description="redacted result")
    is_error: bool = False
    attachments: list[str] = Field(default_factory=list, description="media type, size, sha256")


class InteractionReport(BaseModel):
    interaction_id: str
    account: str
    source_format: str
    started_at: Utc
    ended_at: Utc | None = None
    agent: str | None = None
    model: str | None = None
    content_hash: str
    source: str | None = Field(None, description="file:line it was read from")
    domains: list[str] = Field(default_factory=list)
    summary: str | None = None
    summary_backend: str | None = None
    steps: list[StepRow] = Field(default_factory=list)
    cases: list[str] = Field(default_factory=list, description="cases citing it")


class QueueDepthRow(BaseModel):
    rubric: str
    by_status: dict[str, int]
    total: int


class DayRow(BaseModel):
    day: str
    opened: int
    closed: int


class TopAccount(BaseModel):
    account: str
    cases: int
    priority: float
    rubrics: list[str]


class TopCampaign(BaseModel):
    case_id: str
    subject: str
    accounts: int
    rubric: str
    score: float
    priority: float
    status: str


class DecisionRow(BaseModel):
    reviewer: str
    decisions: dict[str, int] = Field(description="by action; `dismissed` for none")
    total: int
    median_hours_to_close: float | None = None


class BackendRow(BaseModel):
    stage: str = Field(description="summaries, rollups or verdicts")
    backend: str
    model: str
    count: int
    tokens_in: int
    tokens_out: int
    failures: int = 0


class ProcessingStats(BaseModel):
    interactions: int
    accounts: int
    quarantined: int
    first_at: Utc | None = None
    last_at: Utc | None = None
    backends: list[BackendRow] = Field(default_factory=list)


class OverviewReport(BaseModel):
    since: Utc | None = None
    queue: list[QueueDepthRow] = Field(default_factory=list)
    statuses: list[str]
    days: list[DayRow] = Field(default_factory=list)
    top_accounts: list[TopAccount] = Field(default_factory=list)
    top_campaigns: list[TopCampaign] = Field(default_factory=list)
    decisions: list[DecisionRow] = Field(default_factory=list)
    rubric_precision: list[RubricPrecision] = Field(
        default_factory=list, description="per rubric, actioned vs dismissed cases"
    )
    secrets_caught: dict[str, int] = Field(
        default_factory=dict,
        description="secret values the last guard redacted before a write, by stage",
    )
    processing: ProcessingStats


class WindowRow(BaseModel):
    aggregate_id: str
    kind: str
    window: str
    window_start: Utc
    window_end: Utc
    interactions: int
    domains: int
    posts: int
    duplicate_share: float | None = None
    verdicts: dict[str, float] = Field(default_factory=dict, description="rubric: score")
    flagged: list[str] = Field(default_factory=list)


class CaseRow(BaseModel):
    case_id: str
    status: str
    rubric: str
    score: float
    priority: float
    subject: str
    window_start: Utc
    window_end: Utc


class AccountReport(BaseModel):
    account: str
    interactions: int
    first_at: Utc | None = None
    last_at: Utc | None = None
    formats: dict[str, int] = Field(default_factory=dict)
    top_domains: dict[str, int] = Field(default_factory=dict)
    timeline: Timeline | None = None
    windows: list[WindowRow] = Field(default_factory=list)
    campaigns: list[WindowRow] = Field(default_factory=list)
    cases: list[CaseRow] = Field(default_factory=list)
