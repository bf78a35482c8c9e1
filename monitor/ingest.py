"""Ingestion: files, folders and stdin in; interactions or quarantined records out.

Every record ends in exactly one of two places: the interactions table, or the quarantine
with its source file, line, the adapter tried and the error. Records are written in batches,
each in one transaction, so an interrupted run keeps every batch it finished and re-running
it stores nothing twice.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import BaseModel, ValidationError

from tracewatch.monitor.envelope import Envelope, describe_validation_error
from tracewatch.monitor.models import Interaction, derive_interaction_id
from tracewatch.monitor.store import Rejected, Store
from tracewatch.trace_adapters import AdapterError, DetectionError, detect, get
from tracewatch.trace_adapters.base import Adapter, ParsedTrace
from tracewatch.trace_adapters.blobs import strip_blobs
from tracewatch.trace_adapters.inspect_ai import load_eval_zip
from tracewatch.trace_adapters.registry import resolve

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
DOCUMENT_SUFFIXES = (".json", ".json.gz", ".traj", ".eval")
TRACE_SUFFIXES = JSONL_SUFFIXES + DOCUMENT_SUFFIXES
DEFAULT_ACCOUNT = "unassigned"
# Rejected records are kept whole up to this size; beyond it, without their base64 payloads.
RAW_KEEP_BYTES = 1 << 20


class IngestOptions(BaseModel):
    format: str | None = None
    account: str | None = None
    batch_size: int = 500


@dataclass
class IngestReport:
    files: int = 0
    bytes: int = 0
    records: int = 0
    interactions: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantine_repeats: int = 0
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    by_format: Counter[str] = field(default_factory=Counter)
    format_hint_mismatches: Counter[str] = field(default_factory=Counter)
    defaults_used: Counter[str] = field(default_factory=Counter)
    skipped_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "records": self.records,
            "interactions": self.interactions,
            "ingested": self.inserted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "quarantine_already_known": self.quarantine_repeats,
            "quarantined_by_reason": dict(self.quarantined_by_reason),
            "by_format": dict(self.by_format),
            "format_hint_mismatches": dict(self.format_hint_mismatches),
            "defaults_used": dict(self.defaults_used),
            "skipped_files": self.skipped_files,
        }


@dataclass
class Record:
    """One unit to read: a parsed-or-not document plus where it came from."""

    source: str
    line: int | None
    raw: bytes | None
    doc: Any = None
    error: str | None = None
    mtime: datetime | None = None


class PathError(OSError):
    """A path given on the command line cannot be read."""


def discover(paths: list[str]) -> tuple[list[Path | str], list[str]]:
    """Expand folders recursively; '-' is stdin. Returns (inputs, skipped files)."""
    found: list[Path | str] = []
    skipped: list[str] = []
    for p in paths:
        if p == "-":
            found.append("-")
            continue
        path = Path(p)
        if not path.exists():
            raise PathError(f"{p}: no such file or directory")
        if path.is_dir():
            sessions = session_folders(path)
            found.extend(sessions)
            for child in sorted(path.rglob("*")):
                if not child.is_file() or any(part.startswith(".") for part in child.parts[-1:]):
                    continue
                if any(s in child.parents for s in sessions):
                    continue  # read as part of its session
                if child.name.lower().endswith(TRACE_SUFFIXES):
                    found.append(child)
                else:
                    skipped.append(str(child))
        elif path.is_file():
            if not os.access(path, os.R_OK):
                raise PathError(f"{p}: permission denied")
            found.append(path)
        else:
            raise PathError(f"{p}: not a regular file or folder")
    return found, skipped


# A folder that holds one agent session as one JSON file per event (OpenHands V0
# `sessions/<id>/events/<n>.json`, V1 `event_service/events/event-<n>-<id>.json`), beside the
# session's own state file: read as one interaction, events in their numbered order.
SESSION_STATE_FILES = ("metadata.json", "base_state.json")


def session_folders(root: Path) -> list[Path]:
    """The session folders at or under `root`."""
    candidates = [root / "events"] if (root / "events").is_dir() else []
    candidates += [d for d in root.rglob("events") if d.is_dir() and d != root / "events"]
    out = []
    for events in sorted(candidates):
        files = [f for f in events.iterdir() if f.is_file()]
        if (
            files
            and all(f.suffix.lower() == ".json" for f in files)
            and all(re.search(r"\d", f.name) for f in files)
            and (
                any((events.parent / s).is_file() for s in SESSION_STATE_FILES)
                or all(re.fullmatch(r"\d+\.json", f.name) for f in files)
            )
        ):
            out.append(events.parent)
    return out


def _event_order(path: Path) -> tuple[int, str]:
    m = re.search(r"\d+", path.name)
    return (int(m.group(0)) if m else -1, path.name)


def read_session(folder: Path, on_bytes: Callable[[int], None]) -> Record:
    """A session folder as one document `{"events": [...], "metadata": {...}}`; a file of it
    that cannot be read makes the whole session one quarantined record, named by that file."""
    mtime = datetime.fromtimestamp(folder.stat().st_mtime, tz=UTC)
    events = []
    for f in sorted((folder / "events").iterdir(), key=_event_order):
        raw = f.read_bytes()
        on_bytes(len(raw))
        try:
            events.append(_parse(raw))
        except orjson.JSONDecodeError as exc:
            return Record(
                str(folder), None, None, error=f"{f.name}: invalid JSON: {exc}", mtime=mtime
            )
    doc: dict[str, Any] = {"events": events}
    for name in SESSION_STATE_FILES:
        state = folder / name
        if state.is_file():
            try:
                doc["metadata"] = _parse(state.read_bytes())
            except orjson.JSONDecodeError as exc:
                return Record(
                    str(folder), None, None, error=f"{name}: invalid JSON: {exc}", mtime=mtime
                )
            break
    return Record(str(folder), None, None, doc=doc, mtime=mtime)


def _keep(raw: bytes) -> bytes:
    return raw if len(raw) <= RAW_KEEP_BYTES else strip_blobs(raw)


def _parse(raw: bytes) -> Any:
    return orjson.loads(strip_blobs(raw))


def read_records(src: Path | str, on_bytes: Callable[[int], None]) -> Iterator[Record]:
    """Records of one input. JSONL yields one per line; any other file is one document."""
    if src == "-":
        yield from _read_stream(sys.stdin.buffer, "<stdin>", None, on_bytes, sniff=True)
        return
    assert isinstance(src, Path)
    if src.is_dir():
        yield read_session(src, on_bytes)
        return
    name = src.name.lower()
    mtime = datetime.fromtimestamp(src.stat().st_mtime, tz=UTC)
    if name.endswith(JSONL_SUFFIXES):
        if name.endswith(".gz"):  # progress counts compressed bytes, so report them at the end
            with gzip.open(src, "rb") as fh:
                try:
                    yield from _read_stream(fh, str(src), mtime, lambda n: None)
                except (OSError, EOFError) as exc:
                    yield Record(str(src), None, None, error=f"bad gzip data: {exc}", mtime=mtime)
            on_bytes(src.stat().st_size)
        else:
            with open(src, "rb") as fh:
                yield from _read_stream(fh, str(src), mtime, on_bytes)
        return
    raw = src.read_bytes()
    on_bytes(len(raw))
    if name.endswith(".eval") or raw[:2] == b"PK":
        try:
            doc = load_eval_zip(src)
        except (AdapterError, OSError, orjson.JSONDecodeError) as exc:
            yield Record(
                str(src), None, _keep(raw), error=f"unreadable .eval archive: {exc}", mtime=mtime
            )
            return
        yield Record(str(src), None, None, doc=doc, mtime=mtime)
        return
    if name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            yield Record(str(src), None, None, error=f"bad gzip data: {exc}", mtime=mtime)
            return
    try:
        yield Record(str(src), None, None, doc=_parse(raw), mtime=mtime)
    except orjson.JSONDecodeError as exc:
        if (docs := concatenated(raw)) is not None:
            # JSON values one after another (the OTel console exporter's output): one document
            yield Record(str(src), None, None, doc=docs, mtime=mtime)
            return
        # Perhaps a JSONL file with a .json name: read it line by line (its bad lines each
        # quarantined) if most lines parse; a broken pretty-printed document, or a broken
        # .traj, is one bad record, not one per line.
        lines = [ln for ln in raw.splitlines() if ln.strip()]
        if len(lines) > 1 and not name.endswith(WHOLE_DOCUMENT_SUFFIXES) and _mostly_json(lines):
            yield from _read_stream(io.BytesIO(raw), str(src), mtime, lambda n: None)
            return
        yield Record(str(src), None, _keep(raw), error=f"invalid JSON: {exc}", mtime=mtime)


WHOLE_DOCUMENT_SUFFIXES = (".traj", ".eval")  # never JSONL: broken, it is one broken record


def _mostly_json(lines: list[bytes]) -> bool:
    ok = 0
    for ln in lines:
        try:
            orjson.loads(ln)
            ok += 1
        except orjson.JSONDecodeError:
            pass
    return ok * 2 > len(lines)


def concatenated(raw: bytes) -> list[Any] | None:
    """Two or more JSON values written one after another, or None if that is not what it is."""
    try:
        text = strip_blobs(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            break
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None
        docs.append(doc)
    return docs if len(docs) > 1 and all(isinstance(d, dict) for d in docs) else None


def _read_stream(
    fh: BinaryIO,
    source: str,
    mtime: datetime | None,
    on_bytes: Callable[[int], None],
    sniff: bool = False,
) -> Iterator[Record]:
    if sniff:
        # stdin: JSONL envelopes if the first line is a whole JSON object, else one document.
        first = fh.readline()
        try:
            orjson.loads(first)
            is_lines = True
        except orjson.JSONDecodeError:
            is_lines = False
        if not is_lines:
            raw = first + fh.read()
            on_bytes(len(raw))
            try:
                yield Record(source, None, None, doc=_parse(raw), mtime=mtime)
            except orjson.JSONDecodeError as exc:
                yield Record(source, None, _keep(raw), error=f"invalid JSON: {exc}", mtime=mtime)
            return
        lines: Iterator[bytes] = iter([first, *fh])
    else:
        lines = iter(fh)
    for lineno, line in enumerate(lines, start=1):
        on_bytes(len(line))
        if not line.strip():
            continue
        try:
            yield Record(source, lineno, line, doc=_parse(line), mtime=mtime)
        except orjson.JSONDecodeError as exc:
            yield Record(
                source, lineno, _keep(line.rstrip(b"\n")), error=f"invalid JSON: {exc}", mtime=mtime
            )


def _reject(rec: Record, reason: str, error: str, adapter: str | None = None) -> Rejected:
    raw = rec.raw
    if raw is None and rec.doc is not None:
        raw = _keep(orjson.dumps(rec.doc, default=str))
    return Rejected(rec.source, rec.line, adapter, reason, error, raw)


def _native(doc: dict[str, Any]) -> bool:
    """A document with a `trace` key that is a native format (a Langfuse export), not an
    envelope. Envelopes name their account, so only those that do not are asked."""
    if "account_id" in doc:
        return False
    try:
        detect(doc)
    except DetectionError:
        return False
    return True


def build_interactions(
    rec: Record, opts: IngestOptions, report: IngestReport
) -> tuple[list[Interaction], Rejected | None]:
    """A record to interactions, or to exactly one rejection saying why."""
    if rec.error is not None:
        return [], _reject(rec, "invalid_json" if "JSON" in rec.error else "unreadable", rec.error)
    doc = rec.doc
    envelope: Envelope | None = None
    if isinstance(doc, dict) and "trace" in doc and not _native(doc):
        try:
            envelope = Envelope.model_validate(doc)
        except ValidationError as exc:
            return [], _reject(rec, "invalid_envelope", describe_validation_error(exc))
        doc = envelope.trace
    hint = (envelope.format if envelope else None) or opts.format
    read = _read_with_hint(rec, doc, hint, report)
    if isinstance(read, Rejected):
        return [], read
    adapter, traces = read
    out: list[Interaction] = []
    try:
        for n, trace in enumerate(traces):
            out.append(
                _interaction(rec, envelope, trace, n, len(traces), adapter.name, opts, report)
            )
    except ValidationError as exc:
        return [], _reject(rec, "invalid_interaction", describe_validation_error(exc), adapter.name)
    return out, None


_PARSE_ERRORS = (AdapterError, ValidationError, KeyError, TypeError, AttributeError, ValueError)


@dataclass
class _Refusal:
    """Why one adapter did not read a document: a quarantine reason and message."""

    reason: str
    error: str
    adapter: str


def _parse_with(adapter: Adapter, doc: Any) -> list[ParsedTrace] | _Refusal:
    try:
        traces = list(adapter.parse(doc))
    except _PARSE_ERRORS as exc:
        if isinstance(exc, ValidationError):
            msg = describe_validation_error(exc)
        elif isinstance(exc, (KeyError, TypeError, AttributeError)):
            msg = f"unexpected structure for {adapter.name}: {type(exc).__name__}: {exc}"
        else:
            msg = str(exc)
        return _Refusal("adapter_error", msg, adapter.name)
    if not traces:
        return _Refusal("empty_trace", "the document holds no interaction", adapter.name)
    return traces


def _read_with_hint(
    rec: Record, doc: Any, hint: str | None, report: IngestReport
) -> tuple[Adapter, list[ParsedTrace]] | Rejected:
    """Read a document, taking the format hint as advice.

    Senders spell formats their own way and sometimes name the wrong one, so the hinted adapter
    is tried first and detection decides when the hint names no adapter or its adapter refuses
    the trace; each such mismatch is counted. Only what no adapter reads is quarantined, with
    the hinted adapter's reason first.
    """
    hinted = resolve(hint)
    refused: _Refusal | None = None
    if hinted is not None:
        got = _parse_with(hinted, doc)
        if not isinstance(got, _Refusal):
            return hinted, got
        refused = got
    try:
        detected = detect(doc)
    except DetectionError as exc:
        if refused is not None:
            return _reject(rec, refused.reason, refused.error, refused.adapter)
        msg = f"format hint {hint!r} names no known format, and {exc}" if hint else str(exc)
        return _reject(rec, "unknown_format", msg)
    if refused is not None and detected is hinted:
        return _reject(rec, refused.reason, refused.error, refused.adapter)
    got = _parse_with(detected, doc)
    if isinstance(got, _Refusal):
        if refused is not None:
            msg = f"{refused.error}; detection chose {detected.name}: {got.error}"
            return _reject(rec, refused.reason, msg, refused.adapter)
        return _reject(rec, got.reason, got.error, got.adapter)
    if hint:
        said = hinted.name if hinted is not None else "no known format"
        report.format_hint_mismatches[f"{hint} ({said}) -> read as {detected.name}"] += 1
    return detected, got


def _interaction(
    rec: Record,
    env: Envelope | None,
    trace: ParsedTrace,
    n: int,
    total: int,
    fmt: str,
    opts: IngestOptions,
    report: IngestReport,
) -> Interaction:
    if env is not None:
        account = env.account_id
    elif opts.account:
        account = opts.account
        report.defaults_used["account from --account"] += 1
    elif trace.account_hint:
        account = trace.account_hint
        report.defaults_used["account from the trace's user attribute"] += 1
    else:
        account = DEFAULT_ACCOUNT
        report.defaults_used[
            f"account defaulted to '{DEFAULT_ACCOUNT}' (no envelope, no --account)"
        ] += 1
    started = own_time = (env.started_at if env else None) or trace.started_at
    if started is None and rec.mtime is not None:
        started = rec.mtime
        report.defaults_used["time from the file's modification time"] += 1
    elif started is None:
        started = datetime.now(UTC)
        report.defaults_used["time defaulted to ingestion time (stdin, no time in trace)"] += 1
    metadata = {**trace.metadata, **(env.metadata if env else {})}
    if trace.native_id:
        metadata.setdefault("native_id", trace.native_id)
    base = Interaction(
        interaction_id="pending",
        account_id=account,
        source_format=fmt,
        started_at=started,
        ended_at=(env.ended_at if env else None) or trace.ended_at,
        agent=trace.agent,
        model=trace.model,
        steps=trace.steps,
        metadata=metadata,
    )
    if env is not None and env.interaction_id:
        iid = env.interaction_id if total == 1 else f"{env.interaction_id}#{trace.native_id or n}"
    else:
        # A defaulted time (mtime, now) stays out of the id, so that touching or re-piping the
        # same file does not make its interactions look new.
        # Without any time of its own, the record's place (file name, line) tells two identical
        # records apart.
        place = "" if own_time else f":{Path(rec.source).name}:{rec.line}"
        iid = derive_interaction_id(
            account, own_time, f"{base.content_hash}:{trace.native_id or n}{place}"
        )
    base.interaction_id = iid
    return base


def ingest(
    paths: list[str],
    store: Store,
    opts: IngestOptions | None = None,
    on_bytes: Callable[[int], None] = lambda n: None,
    on_file: Callable[[str], None] = lambda s: None,
) -> IngestReport:
    """Read every path into the store. Raises PathError before writing if a path is unreadable."""
    opts = opts or IngestOptions()
    if opts.format:
        get(opts.format)  # unknown --format is a usage error, not a per-record one
    inputs, skipped = discover(paths)
    report = IngestReport(skipped_files=skipped)
    batch: list[tuple[Interaction, str | None, int | None]] = []
    rejected: list[Rejected] = []

    def flush() -> None:
        if not batch and not rejected:
            return
        store_batch(store, batch, rejected, report)
        batch.clear()
        rejected.clear()

    def count(n: int) -> None:
        report.bytes += n
        on_bytes(n)

    for src in inputs:
        report.files += 1
        on_file(str(src))
        for item in adapt_input(src, opts, report, count):
            if isinstance(item, Rejected):
                rejected.append(item)
            else:
                batch.append(item)
            if len(batch) >= opts.batch_size or len(rejected) >= opts.batch_size:
                flush()
    flush()
    return report


def store_batch(
    store: Store,
    batch: list[tuple[Interaction, str | None, int | None]],
    rejected: list[Rejected],
    report: IngestReport,
) -> None:
    """Write one batch and count what the store made of it (new, duplicate, conflicting)."""
    res = store.write_batch(batch, rejected)
    report.inserted += res.inserted
    report.duplicates += res.duplicates
    report.quarantined += len(rejected) + res.conflicts
    if res.conflicts:
        report.quarantined_by_reason["conflicting_duplicate"] += res.conflicts
    report.quarantine_repeats += res.quarantine_repeats


def adapt_input(
    src: Path | str,
    opts: IngestOptions,
    report: IngestReport,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> Iterator[tuple[Interaction, str | None, int | None] | Rejected]:
    """One input's interactions (with source file and line) and rejections, in file order.

    The unit of work both engines share: `ingest` writes what it yields to the store, the Ray
    engine writes it to one Parquet file per input.
    """
    for rec in read_records(src, on_bytes):
        report.records += 1
        interactions, rej = build_interactions(rec, opts, report)
        if rej is not None:
            report.quarantined_by_reason[rej.reason] += 1
            yield rej
        for inter in interactions:
            report.interactions += 1
            report.by_format[inter.source_format] += 1
            yield (inter, rec.source, rec.line)


def input_size(paths: list[str]) -> int | None:
    """Total bytes to read, for the progress bar; None when stdin makes it unknowable."""
    if "-" in paths:
        return None
    inputs, _ = discover(paths)
    return sum(
        sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        if p.is_dir()
        else p.stat().st_size
        for p in inputs
        if isinstance(p, Path)
    )
