"""The enforcement queue: one case per (subject, rubric, window), worked by human reviewers.

Why it is shaped this way:
- Re-running the pipeline must never hand reviewers the same thing twice. A case is keyed by
  subject type, subject, rubric and window; a later verdict for the same key updates the open
  case and records why (score moved, new evidence). A campaign whose membership changed gets a
  new campaign id, so it is matched to an open case of the same rubric that shares most of its
  accounts and an overlapping window, and that case is updated instead.
- Every change is an event in `case_events`, an append-only table: who, when, from which state
  to which, and the note. Nothing updates or deletes an event.
- Transitions are checked before anything is written, inside one transaction: an invalid one
  raises QueueError with what to do instead and leaves the case exactly as it was.

States: open -> in_review -> actioned | dismissed. `resolve --action none` closes a case as
dismissed (reviewed, no action), the other actions as actioned.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict

from tracewatch.monitor.store import Store, transaction
from tracewatch.rubrics.models import SEVERITY_WEIGHT, Verdict

Status = Literal["open", "in_review", "actioned", "dismissed"]
Action = Literal["warn", "suspend", "terminate", "none"]
STATUSES: tuple[str, ...] = ("open", "in_review", "actioned", "dismissed")
ACTIONS: tuple[str, ...] = ("warn", "suspend", "terminate", "none")
CLOSED = ("actioned", "dismissed")
CAMPAIGN_OVERLAP = 0.5


class QueueError(ValueError):
    """A request the queue refuses; nothing was changed."""


class UnknownCase(QueueError):
    """No case has that id."""


class WrongState(QueueError):
    """The case's state does not allow this transition (it was claimed or closed already)."""


_VERB = {"claimed": "claim", "resolved": "resolve", "dismissed": "dismiss"}


class NotOwner(WrongState):
    """The case is claimed by another reviewer; taking it over needs force and a note."""


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    subject_type: Literal["account", "campaign"]
    subject: str
    accounts: list[str]
    rubric: str
    rubric_version: int
    window: str
    window_start: datetime
    window_end: datetime
    severity: str
    score: float
    confidence: float
    priority: float
    status: Status
    verdict_id: str
    aggregate_id: str
    judge: str
    model: str
    threshold: float
    rationale: str
    evidence: list[str]
    quotes: list[dict[str, Any]]
    signals: dict[str, Any]
    reviewer: str | None
    action: str | None
    note: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class CaseEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: int
    case_id: str
    at: datetime
    actor: str
    event: str
    from_status: str | None
    to_status: str | None
    note: str | None
    details: dict[str, Any] | None


class UpsertReport(BaseModel):
    opened: int = 0
    updated: int = 0
    unchanged: int = 0
    closed_with_new_evidence: int = 0


def priority(v: Verdict) -> float:
    """severity x score x reach; reach grows with the log of interactions and root of accounts.

    A critical single phishing email outranks a medium-severity week of spam by one account,
    while a campaign of twenty accounts outranks one account doing the same.
    """
    reach = math.log2(2 + v.reach) * math.sqrt(max(1, len(v.accounts)))
    return round(SEVERITY_WEIGHT[v.severity] * v.score * reach, 3)


def dedupe_key(v: Verdict) -> str:
    subject_type = "campaign" if v.aggregate_kind == "campaign" else "account"
    return "|".join(
        (
            subject_type,
            v.subject,
            v.rubric_id,
            v.window,
            v.window_start.isoformat(),
            v.window_end.isoformat(),
        )
    )


def _case_id(key: str) -> str:
    return "C-" + hashlib.blake2b(key.encode(), digest_size=5).hexdigest()


_COLUMNS = (
    "case_id, subject_type, subject, accounts, rubric_id, rubric_version, window_size,"
    " window_start, window_end, severity, score, confidence, priority, status, verdict_id,"
    " aggregate_id, judge, model, threshold, rationale, evidence, quotes, signals, reviewer,"
    " action, note, opened_at, updated_at, closed_at"
)


def _case(row: Sequence[Any]) -> Case:
    names = [c.strip() for c in _COLUMNS.split(",")]
    d = dict(zip(names, row, strict=True))
    d["rubric"] = d.pop("rubric_id")
    d["window"] = d.pop("window_size")
    d["quotes"] = orjson.loads(d["quotes"])
    d["signals"] = orjson.loads(d["signals"])
    return Case.model_validate(d)


class Queue:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.con = store.con

    # -- reads ----------------------------------------------------------------------------

    def list(
        self,
        status: Sequence[str] = (),
        rubric: Sequence[str] = (),
        account: str | None = None,
        limit: int | None = None,
    ) -> list[Case]:
        for s in status:
            if s not in STATUSES:
                raise QueueError(f"unknown status {s!r}; use one of {', '.join(STATUSES)}")
        sql = f"SELECT {_COLUMNS} FROM cases WHERE true"
        params: list[Any] = []
        if status:
            sql += " AND status IN (SELECT unnest(?))"
            params.append(list(status))
        if rubric:
            sql += " AND rubric_id IN (SELECT unnest(?))"
            params.append(list(rubric))
        if account:
            sql += " AND list_contains(accounts, ?)"
            params.append(account)
        sql += " ORDER BY priority DESC, case_id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_case(r) for r in self.con.execute(sql, params).fetchall()]

    def get(self, case_id: str) -> Case:
        row = self.con.execute(
            f"SELECT {_COLUMNS} FROM cases WHERE case_id = ?", [case_id]
        ).fetchone()
        if row is None:
            raise UnknownCase(f"no case {case_id!r}; see `tracewatch queue list` for case ids")
        return _case(row)

    def events(self, case_id: str | None = None) -> list[CaseEvent]:
        sql = (
            "SELECT event_id, case_id, at_time, actor, event, from_status, to_status, note, details"
            " FROM case_events"
        )
        params: list[Any] = []
        if case_id:
            sql += " WHERE case_id = ?"
            params.append(case_id)
        out = []
        for r in self.con.execute(sql + " ORDER BY event_id", params).fetchall():
            d = dict(
                zip(
                    (
                        "event_id",
                        "case_id",
                        "at",
                        "actor",
                        "event",
                        "from_status",
                        "to_status",
                        "note",
                        "details",
                    ),
                    r,
                    strict=True,
                )
            )
            d["details"] = orjson.loads(d["details"]) if d["details"] else None
            out.append(CaseEvent.model_validate(d))
        return out

    def counts(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT status, count(*) FROM cases GROUP BY 1").fetchall())

    # -- writes from the judges -------------------------------------------------------------

    def _event(
        self,
        case_id: str,
        actor: str,
        event: str,
        from_status: str | None,
        to_status: str | None,
        note: str | None,
        details: dict[str, Any] | None,
        now: datetime,
    ) -> None:
        self.con.execute(
            "INSERT INTO case_events (case_id, at_time, actor, event, from_status, to_status, note,"
            " details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                case_id,
                now,
                actor,
                event,
                from_status,
                to_status,
                note,
                orjson.dumps(details).decode() if details else None,
            ],
        )

    def _match(
        self, v: Verdict, key: str
    ) -> tuple[str, str, str, list[str], float, list[str]] | None:
        cols = "case_id, status, input_hash, evidence, score, accounts"
        row = self.con.execute(f"SELECT {cols} FROM cases WHERE dedupe_key = ?", [key]).fetchone()
        if row is None and v.aggregate_kind == "campaign":
            # The same campaign after its membership changed: most accounts in common, an
            # overlapping window, the same rubric, still being worked.
            best = None
            for r in self.con.execute(
                f"SELECT {cols} FROM cases WHERE subject_type = 'campaign' AND rubric_id = ?"
                " AND status IN ('open', 'in_review') AND window_start < ? AND window_end > ?",
                [v.rubric_id, v.window_end, v.window_start],
            ).fetchall():
                shared = len(set(r[5]) & set(v.accounts)) / max(1, min(len(r[5]), len(v.accounts)))
                if shared >= CAMPAIGN_OVERLAP and (best is None or shared > best[0]):
                    best = (shared, r)
            row = best[1] if best else None
        if row is None:
            return None
        return row[0], row[1], row[2], list(row[3]), row[4], list(row[5])

    def upsert(self, verdicts: Sequence[Verdict], actor: str = "judge") -> UpsertReport:
        """Open, update or annotate cases for these verdicts; unflagged ones only update."""
        rep = UpsertReport()
        now = datetime.now(UTC)
        with transaction(self.con):
            # Most verdicts are on aggregates nobody flagged: one read of the keys spares each
            # of them a query (campaigns still look for a case under their old membership).
            keys = {r[0] for r in self.con.execute("SELECT dedupe_key FROM cases").fetchall()}
            for v in verdicts:
                key = dedupe_key(v)
                if key not in keys and v.aggregate_kind != "campaign" and not v.flagged:
                    continue
                found = self._match(v, key)
                if found is None:
                    if v.flagged:
                        self._open(v, key, actor, now)
                        keys.add(key)
                        rep.opened += 1
                    continue
                case_id, status, old_hash, old_evidence, old_score, old_accounts = found
                if status in CLOSED:
                    if old_hash != v.input_hash and v.flagged:
                        self._event(
                            case_id,
                            actor,
                            "new_evidence",
                            status,
                            status,
                            "judged again after it was closed; the case stays closed",
                            {"verdict_id": v.verdict_id, "score": v.score},
                            now,
                        )
                        self.con.execute(
                            "UPDATE cases SET input_hash = ?, updated_at = ? WHERE case_id = ?",
                            [v.input_hash, now, case_id],
                        )
                        rep.closed_with_new_evidence += 1
                    else:
                        rep.unchanged += 1
                    continue
                why = _why(v, old_score, old_evidence, list(old_accounts))
                if old_hash == v.input_hash and not why:
                    rep.unchanged += 1
                    continue
                self._update(case_id, v, now)
                self._event(
                    case_id,
                    actor,
                    "updated",
                    status,
                    status,
                    "; ".join(why) or "re-judged on changed input; same score and evidence",
                    {"verdict_id": v.verdict_id, "score": [old_score, v.score]},
                    now,
                )
                rep.updated += 1
        return rep

    def _open(self, v: Verdict, key: str, actor: str, now: datetime) -> None:
        case_id = _case_id(key)
        row = {
            "case_id": case_id,
            "dedupe_key": key,
            "subject_type": "campaign" if v.aggregate_kind == "campaign" else "account",
            "rubric_id": v.rubric_id,
            "window_size": v.window,
            "severity": v.severity,
            "status": "open",
            "opened_at": now,
            **_from_verdict(v, now),
        }
        self.con.execute(
            f"INSERT INTO cases ({', '.join(row)}) VALUES ({', '.join(['?'] * len(row))})",
            list(row.values()),
        )
        self._event(
            case_id,
            actor,
            "opened",
            None,
            "open",
            f"{v.rubric_id} scored {v.score:.2f} (threshold {v.threshold:.2f}) by {v.judge}",
            {"verdict_id": v.verdict_id},
            now,
        )

    def _update(self, case_id: str, v: Verdict, now: datetime) -> None:
        cols = _from_verdict(v, now)
        # A campaign's span grows with its windows: its key follows (the case id, made from
        # the key it opened under, stays), so the case is found the same way a case opened
        # on the grown campaign would be.
        key = dedupe_key(v)
        taken = self.con.execute(
            "SELECT count(*) FROM cases WHERE dedupe_key = ? AND case_id <> ?", [key, case_id]
        ).fetchall()[0][0]
        if not taken:
            cols["dedupe_key"] = key
        self.con.execute(
            f"UPDATE cases SET {', '.join(f'{k} = ?' for k in cols)} WHERE case_id = ?",
            [*cols.values(), case_id],
        )

    # -- reviewer transitions -----------------------------------------------------------------

    def _transition(
        self,
        case_id: str,
        allowed_from: tuple[str, ...],
        to_status: str,
        actor: str,
        event: str,
        note: str | None,
        sets: dict[str, Any],
        hint: str,
        force: bool = False,
    ) -> Case:
        """Move a case; a case in review belongs to its reviewer, and another one acts on it
        only with `force` and a note, both kept in the audit trail as a takeover."""
        now = datetime.now(UTC)
        with transaction(self.con):
            row = self.con.execute(
                "SELECT status, reviewer FROM cases WHERE case_id = ?", [case_id]
            ).fetchone()
            if row is None:
                raise UnknownCase(f"no case {case_id!r}; see `tracewatch queue list` for case ids")
            status, reviewer = row
            taken = bool(status == "in_review" and reviewer and actor and reviewer != actor)
            if status not in allowed_from and not taken:
                who = f" by {reviewer}" if reviewer and status == "in_review" else ""
                raise WrongState(
                    f"case {case_id} is {status}{who}; {event} needs it to be "
                    f"{' or '.join(allowed_from)}. {hint}".strip()
                )
            if not actor or not actor.strip():
                raise QueueError("a reviewer name is required (--reviewer NAME)")
            if taken and not force:
                raise NotOwner(
                    f"case {case_id} is in_review by {reviewer}; {actor} may {_VERB[event]} it "
                    "only with --force and a --note saying why (kept in the audit trail)"
                )
            if taken and not (note and note.strip()):
                raise QueueError("taking over another reviewer's case needs a note (--note TEXT)")
            if taken:
                self._event(
                    case_id, actor, "taken_over", status, status,
                    f"from {reviewer}: {note}", None, now,
                )  # fmt: skip
            assignments = ", ".join(f"{k} = ?" for k in [*sets, "status", "updated_at"])
            self.con.execute(
                f"UPDATE cases SET {assignments} WHERE case_id = ?",
                [*sets.values(), to_status, now, case_id],
            )
            self._event(case_id, actor, event, status, to_status, note, None, now)
        return self.get(case_id)

    def claim(
        self, case_id: str, reviewer: str, note: str | None = None, force: bool = False
    ) -> Case:
        return self._transition(
            case_id,
            ("open",),
            "in_review",
            reviewer,
            "claimed",
            note,
            {"reviewer": reviewer},
            "Closed cases stay closed; a claimed one is already being worked.",
            force,
        )

    def resolve(
        self,
        case_id: str,
        action: str,
        note: str,
        reviewer: str | None = None,
        force: bool = False,
    ) -> Case:
        if action not in ACTIONS:
            raise QueueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        to_status = "dismissed" if action == "none" else "actioned"
        return self._close(case_id, to_status, action, "resolved", note, reviewer, force)

    def dismiss(
        self, case_id: str, note: str, reviewer: str | None = None, force: bool = False
    ) -> Case:
        return self._close(case_id, "dismissed", "none", "dismissed", note, reviewer, force)

    def _close(
        self,
        case_id: str,
        to_status: str,
        action: str,
        event: str,
        note: str,
        reviewer: str | None,
        force: bool = False,
    ) -> Case:
        if not note or not note.strip():
            raise QueueError("a note is required: say why (--note TEXT)")
        actor = reviewer or self.get(case_id).reviewer or ""
        return self._transition(
            case_id,
            ("in_review",),
            to_status,
            actor,
            event,
            note,
            {"action": action, "note": note, "closed_at": datetime.now(UTC), "reviewer": actor},
            f"Claim it first: tracewatch queue claim {case_id} --reviewer NAME.",
            force,
        )

    def export(self) -> list[dict[str, Any]]:
        events: dict[str, list[dict[str, Any]]] = {}
        for e in self.events():
            events.setdefault(e.case_id, []).append(e.model_dump(mode="json", exclude={"case_id"}))
        return [
            {**c.model_dump(mode="json"), "events": events.get(c.case_id, [])} for c in self.list()
        ]


def _from_verdict(v: Verdict, now: datetime) -> dict[str, Any]:
    """The case columns a verdict sets, both when it opens a case and when it updates one."""
    return {
        "subject": v.subject,
        "accounts": v.accounts,
        "rubric_version": v.rubric_version,
        "window_start": v.window_start,
        "window_end": v.window_end,
        "score": v.score,
        "confidence": v.confidence,
        "priority": priority(v),
        "verdict_id": v.verdict_id,
        "aggregate_id": v.aggregate_id,
        "input_hash": v.input_hash,
        "judge": v.judge,
        "model": v.model,
        "threshold": v.threshold,
        "rationale": v.rationale,
        "evidence": v.evidence,
        "quotes": orjson.dumps([q.model_dump() for q in v.quotes]).decode(),
        "signals": orjson.dumps(v.signals).decode(),
        "updated_at": now,
    }


def _why(
    v: Verdict, old_score: float, old_evidence: list[str], old_accounts: list[str]
) -> list[str]:
    why = []
    if abs(v.score - old_score) >= 0.005:
        why.append(f"score {old_score:.2f} -> {v.score:.2f}")
    added = [i for i in v.evidence if i not in old_evidence]
    if added:
        why.append(f"{len(added)} new cited interaction(s): {', '.join(added[:3])}")
    joined = sorted(set(v.accounts) - set(old_accounts))
    left = sorted(set(old_accounts) - set(v.accounts))
    if joined or left:
        why.append(f"accounts +{len(joined)} -{len(left)}")
    if not v.flagged and old_score >= v.threshold:  # said once, when it crosses, not every run
        why.append(f"now below the threshold ({v.score:.2f} < {v.threshold:.2f}); left for review")
    return why
