"""Ingestion: files, folders and stdin in; interactions or quarantined records out.

Every record ends in exactly one of two places: the interactions table, or the quarantine
with its source file, line, the adapter tried and the error. Records are written in batches,
each in one transaction, so an interrupted run keeps every batch it finished and re-running
it stores nothing twice.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import sys
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson
from pydantic import BaseModel, ValidationError

from tracewatch.monitor.envelope import Envelope, describe_validation_error
from tracewatch.monitor.file_marks import FilePlan
from tracewatch.monitor.file_marks import plan as plan_file
from tracewatch.monitor.file_marks import remember as remember_file
from tracewatch.monitor.limits import (
    InputLimits,
    LimitExceeded,
    check_depth,
    check_time,
    default_limits,
    too_deep,
)
from tracewatch.monitor.models import Interaction, derive_interaction_id
from tracewatch.monitor.processes import WorkerPool, chunks, worker_count
from tracewatch.monitor.store import Rejected, Store
from tracewatch.summarizers.models import Summary
from tracewatch.summarizers.secrets import collect
from tracewatch.trace_adapters import AdapterError, DetectionError, detect, get
from tracewatch.trace_adapters.base import Adapter, ParsedTrace
from tracewatch.trace_adapters.blobs import strip_blobs
from tracewatch.trace_adapters.inspect_ai import load_eval_zip
from tracewatch.trace_adapters.registry import resolve

if TYPE_CHECKING:
    from tracewatch.summarizers.embedded import EmbeddedSummarizer

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
    reread: bool = False  # read files again even where their bytes are as last read


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
    unchanged_files: int = 0
    resumed_files: int = 0
    summarized: int = 0  # summaries written as records were read (`run`, embedded backend)
    workers: int = 1  # processes that adapted the records

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "files_unchanged": self.unchanged_files,
            "files_read_from_where_they_ended": self.resumed_files,
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
            "summarized": self.summarized,
            "workers": self.workers,
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
    reason: str | None = None  # the quarantine reason of an error; derived when not given
    parsed: bool = True  # False: a JSONL line, parsed where it is adapted (maybe a worker)


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
    limits = default_limits()
    mtime = datetime.fromtimestamp(folder.stat().st_mtime, tz=UTC)
    events = []
    state_files = [folder / n for n in SESSION_STATE_FILES if (folder / n).is_file()][:1]
    event_files = sorted((folder / "events").iterdir(), key=_event_order)
    metadata: Any = None
    for f in [*event_files, *state_files]:
        try:
            raw = _read_bounded(f, limits.max_document_bytes)
            on_bytes(len(raw))
            value = _parse(raw, limits)
        except (orjson.JSONDecodeError, LimitExceeded, OSError) as exc:
            return Record(
                str(folder),
                None,
                None,
                error=f"{f.name}: {_why(exc)}",
                mtime=mtime,
                reason=_reason_of(exc),
            )
        if f in state_files:
            metadata = value
        else:
            events.append(value)
    doc: dict[str, Any] = {"events": events}
    if metadata is not None:
        doc["metadata"] = metadata
    return Record(str(folder), None, None, doc=doc, mtime=mtime)


def _keep(raw: bytes) -> bytes:
    return raw if len(raw) <= RAW_KEEP_BYTES else strip_blobs(raw)


def _parse(raw: bytes, limits: InputLimits | None = None) -> Any:
    """Raw JSON to a value, within the limits: base64 payloads dropped first, then parsed,
    then its nesting checked (on the bytes, in C) before anything walks it recursively."""
    limits = limits or default_limits()
    stripped = strip_blobs(raw)
    doc = orjson.loads(stripped)
    check_depth(stripped, limits)
    return doc


def _why(exc: BaseException) -> str:
    if isinstance(exc, orjson.JSONDecodeError):
        return f"invalid JSON: {exc}"
    return str(exc)


def _reason_of(exc: BaseException) -> str:
    if isinstance(exc, LimitExceeded):
        return exc.reason
    if isinstance(exc, orjson.JSONDecodeError):
        return "invalid_json"
    return "unreadable"


def _read_bounded(path: Path, limit: int) -> bytes:
    """A file's bytes, refused before reading if it is past the limit."""
    size = path.stat().st_size
    if size > limit:
        raise LimitExceeded(
            "too_large",
            f"{size} bytes is over the {limit}-byte limit for one document "
            "(TRACEWATCH_LIMITS max_document_bytes)",
        )
    return path.read_bytes()


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(RAW_KEEP_BYTES)


def _inflate(raw: bytes, limit: int) -> bytes:
    """Gzip bytes, every member (RFC 1952 allows several), inflated no further than `limit`."""
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
        out = fh.read(limit + 1)
    if len(out) > limit:
        raise LimitExceeded(
            "too_large",
            f"inflates past the {limit}-byte limit for one document "
            "(TRACEWATCH_LIMITS max_document_bytes)",
        )
    return out


_GZIP_ERRORS = (OSError, EOFError, zlib.error)


def read_records(
    src: Path | str,
    on_bytes: Callable[[int], None],
    start: tuple[int, int] = (0, 0),
    parse: bool = True,
) -> Iterator[Record]:
    """Records of one input. JSONL yields one per line; any other file is one document.
    `start` is (byte offset, lines before it) in a plain JSONL file read from part-way.
    `parse=False` leaves a JSONL file's lines as bytes, for `build_interactions` to parse."""
    limits = default_limits()
    if src == "-":
        yield from read_stdin(sys.stdin.buffer, on_bytes, limits)
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
                cap = limits.max_stream_bytes
                yield from _read_stream(
                    fh, str(src), mtime, lambda n: None, limits, cap, parse=parse
                )
            on_bytes(src.stat().st_size)
        else:
            with open(src, "rb") as fh:
                fh.seek(start[0])
                yield from _read_stream(
                    fh, str(src), mtime, on_bytes, limits, first_line=start[1], parse=parse
                )
        return
    try:
        raw = _read_bounded(src, limits.max_document_bytes)
    except LimitExceeded as exc:
        on_bytes(src.stat().st_size)
        yield Record(str(src), None, _head(src), error=str(exc), mtime=mtime, reason=exc.reason)
        return
    on_bytes(len(raw))
    if name.endswith(".eval") or raw[:2] == b"PK":
        try:
            doc = load_eval_zip(src, limits)
        except (AdapterError, OSError, orjson.JSONDecodeError, LimitExceeded) as exc:
            yield Record(
                str(src),
                None,
                _keep(raw),
                error=f"unreadable .eval archive: {_why(exc)}",
                mtime=mtime,
                reason=_reason_of(exc),
            )
            return
        yield Record(str(src), None, None, doc=doc, mtime=mtime)
        return
    if name.endswith(".gz"):
        try:
            raw = _inflate(raw, limits.max_document_bytes)
        except LimitExceeded as exc:
            yield Record(str(src), None, None, error=str(exc), mtime=mtime, reason=exc.reason)
            return
        except _GZIP_ERRORS as exc:
            yield Record(str(src), None, _keep(raw), error=f"bad gzip data: {exc}", mtime=mtime)
            return
    yield from _document(raw, str(src), mtime, limits, whole=name.endswith(WHOLE_DOCUMENT_SUFFIXES))


def _document(
    raw: bytes, source: str, mtime: datetime | None, limits: InputLimits, whole: bool = False
) -> Iterator[Record]:
    """One document's records: the document, or JSON values written one after another, or
    (for a JSONL stream under another name) its lines; otherwise one broken record."""
    try:
        yield Record(source, None, None, doc=_parse(raw, limits), mtime=mtime)
        return
    except LimitExceeded as exc:
        yield Record(source, None, _keep(raw), error=str(exc), mtime=mtime, reason=exc.reason)
        return
    except orjson.JSONDecodeError as exc:
        error = exc
    if (docs := concatenated(raw, limits)) is not None:
        # JSON values one after another (the OTel console exporter's output): one document
        yield Record(source, None, None, doc=docs, mtime=mtime)
        return
    # Perhaps JSONL under a .json name or on stdin: read it line by line (its bad lines each
    # quarantined) if most lines parse; a broken pretty-printed document, or a broken .traj,
    # is one bad record, not one per line.
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    if len(lines) > 1 and not whole and _mostly_json(lines):
        yield from _read_stream(io.BytesIO(raw), source, mtime, lambda n: None, limits)
        return
    yield Record(source, None, _keep(raw), error=f"invalid JSON: {error}", mtime=mtime)


WHOLE_DOCUMENT_SUFFIXES = (".traj", ".eval")  # never JSONL: broken, it is one broken record


def _mostly_json(lines: list[bytes]) -> bool:
    return sum(map(_parses, lines)) * 2 > len(lines)


def concatenated(raw: bytes, limits: InputLimits | None = None) -> list[Any] | None:
    """Two or more JSON values written one after another, or None if that is not what it is."""
    limits = limits or default_limits()
    try:
        stripped = strip_blobs(raw)
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if too_deep(stripped, limits):
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
        except (json.JSONDecodeError, RecursionError):
            return None
        docs.append(doc)
    return docs if len(docs) > 1 and all(isinstance(d, dict) for d in docs) else None


BOM = b"\xef\xbb\xbf"
_DRAIN = 1 << 20


def read_stdin(
    fh: BinaryIO, on_bytes: Callable[[int], None], limits: InputLimits
) -> Iterator[Record]:
    """Standard input, read like a file: JSONL line by line when its first line is JSON,
    otherwise buffered (up to the document limit) and read like a `.json` file would be, so
    a bad first line or a byte-order mark costs that line, not the stream."""
    first = fh.readline(limits.max_record_bytes + 1)
    first = first.removeprefix(BOM)
    while first and not first.strip():
        on_bytes(len(first))
        first = fh.readline(limits.max_record_bytes + 1)
    if not first:
        return  # empty input: nothing was sent, so nothing is recorded
    head = [first]
    if len(first) <= limits.max_record_bytes and not _parses(first):
        size = len(first)
        while size <= limits.max_document_bytes:
            line = fh.readline(limits.max_record_bytes + 1)
            if not line:  # all of it fits: read it as a document
                raw = b"".join(head)
                on_bytes(len(raw))
                yield from _document(raw, "<stdin>", None, limits)
                return
            head.append(line)
            size += len(line)
    yield from _read_stream(
        _Chained(head, fh), "<stdin>", None, on_bytes, limits, limits.max_stream_bytes
    )


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


class _Chained:
    """Lines already read, then the rest of the stream: `readline` as on a file."""

    def __init__(self, head: list[bytes], rest: BinaryIO) -> None:
        self.head, self.rest = deque(head), rest  # up to a document's worth of lines

    def readline(self, limit: int = -1) -> bytes:
        if self.head:
            return self.head.popleft()
        return self.rest.readline(limit)


def _read_stream(
    fh: Any,
    source: str,
    mtime: datetime | None,
    on_bytes: Callable[[int], None],
    limits: InputLimits,
    max_total: int | None = None,
    first_line: int = 0,
    parse: bool = True,
) -> Iterator[Record]:
    """One record per line; a line past the record limit is kept (its head) and skipped to
    its end without being held; a stream that breaks part-way keeps every line before the
    break and quarantines the break itself."""
    cap = limits.max_record_bytes
    lineno = first_line
    total = 0
    while True:
        try:
            line = fh.readline(cap + 1)
            if lineno == 0:
                line = line.removeprefix(BOM)
            if not line:
                return
            lineno += 1
            total += len(line)
            on_bytes(len(line))
            if len(line) > cap and not line.endswith(b"\n"):
                size = len(line)
                head = line[:RAW_KEEP_BYTES]
                while not line.endswith(b"\n"):
                    line = fh.readline(_DRAIN)
                    if not line:
                        break
                    size += len(line)
                    total += len(line)
                    on_bytes(len(line))
                yield Record(
                    source,
                    lineno,
                    head,
                    error=f"line of {size} bytes is over the {cap}-byte limit for one record "
                    "(TRACEWATCH_LIMITS max_record_bytes); its first bytes are kept",
                    mtime=mtime,
                    reason="too_large",
                )
                continue
        except _GZIP_ERRORS as exc:
            yield Record(
                source,
                lineno + 1,
                None,
                error=f"bad gzip data after line {lineno}: {exc}; the lines before it are read",
                mtime=mtime,
            )
            return
        if max_total is not None and total > max_total:
            yield Record(
                source,
                lineno,
                None,
                error=f"inflates past the {max_total}-byte limit for one stream "
                "(TRACEWATCH_LIMITS max_stream_bytes); the lines before it are read",
                mtime=mtime,
                reason="too_large",
            )
            return
        if not line.strip():
            continue
        rec = Record(source, lineno, line, mtime=mtime, parsed=False)
        yield _parsed(rec, limits) if parse else rec


def _parsed(rec: Record, limits: InputLimits | None = None) -> Record:
    """A JSONL line's record with its document, or with why it is not JSON (and its bytes)."""
    if rec.parsed:
        return rec
    assert rec.raw is not None
    rec.parsed = True
    try:
        rec.doc = _parse(rec.raw, limits)
    except (orjson.JSONDecodeError, LimitExceeded) as exc:
        rec.raw = _keep(rec.raw.rstrip(b"\n"))
        rec.error = _why(exc)
        rec.reason = _reason_of(exc)
    return rec


def _reject(rec: Record, reason: str, error: str, adapter: str | None = None) -> Rejected:
    raw = rec.raw
    if raw is None and rec.doc is not None:
        try:
            raw = _keep(orjson.dumps(rec.doc, default=str))
        except (TypeError, orjson.JSONEncodeError):
            # past orjson's own nesting limit: the standard encoder has no such limit
            raw = _keep(json.dumps(rec.doc, default=str).encode())
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
    """A record to interactions, or to exactly one rejection saying why.

    Whatever goes wrong inside, including what no adapter anticipated, ends as this record's
    rejection: one record never stops the file, the stream or the server around it.
    """
    try:
        return _build(_parsed(rec), opts, report)
    except LimitExceeded as exc:
        return [], _reject(rec, exc.reason, str(exc))
    except Exception as exc:
        # the type and a bounded message only: the record itself is kept in the quarantine
        msg = str(exc).splitlines()[0][:300] if str(exc) else ""
        return [], _reject(
            rec, "unreadable", f"cannot read this record: {type(exc).__name__}: {msg}"
        )


def _build(
    rec: Record, opts: IngestOptions, report: IngestReport
) -> tuple[list[Interaction], Rejected | None]:
    if rec.error is not None:
        reason = rec.reason or ("invalid_json" if "JSON" in rec.error else "unreadable")
        return [], _reject(rec, reason, rec.error)
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
    except LimitExceeded as exc:
        return _Refusal(exc.reason, str(exc), adapter.name)
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
    limits = default_limits()
    check_time("started_at", started, limits)
    check_time("ended_at", (env.ended_at if env else None) or trace.ended_at, limits)
    for s in trace.steps:
        check_time(f"steps[{s.index}].timestamp", s.timestamp, limits)
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
    summarizer: EmbeddedSummarizer | None = None,
    processes: bool = False,
) -> IngestReport:
    """Read every path into the store. Raises PathError before writing if a path is unreadable.

    With the embedded `summarizer`, each new interaction's summary is made as it is built and
    written with its batch (what `summarize` would write, without reading it back).
    `processes`: adapt large inputs in worker processes. The CLI asks for them; a library
    caller must run under `if __name__ == "__main__":`, as spawned workers import the
    caller's main module.
    """
    opts = opts or IngestOptions()
    if opts.format:
        get(opts.format)  # unknown --format is a usage error, not a per-record one
    inputs, skipped = discover(paths)
    report = IngestReport(skipped_files=skipped)
    batch: list[tuple[Interaction, str | None, int | None]] = []
    rejected: list[Rejected] = []
    work = AdaptWork(opts, summarizer)

    marks: list[FilePlan] = []

    def flush() -> None:
        if batch or rejected:
            store_batch(store, batch, rejected, report, work.found)
            batch.clear()
            rejected.clear()
            work.found.clear()
        if work.summaries:  # after their interactions' batch: only those stored are kept
            report.summarized += store.write_summaries(work.summaries, stored_only=True)
            work.summaries.clear()
        for m in marks:
            remember_file(store, m)
        marks.clear()

    def count(n: int) -> None:
        report.bytes += n
        on_bytes(n)

    pool = adapt_pool(inputs, work) if processes else None
    report.workers = pool.workers if pool is not None else 1
    try:
        for src in inputs:
            report.files += 1
            on_file(str(src))
            mark: FilePlan | None = None
            if isinstance(src, Path) and src.is_file():
                mark = plan_file(store, src, opts.reread)
                if mark.unchanged:  # every record of it is stored or quarantined already
                    report.unchanged_files += 1
                    count(mark.size)
                    continue
                if mark.offset:
                    report.resumed_files += 1
                    count(mark.offset)
            start = (mark.offset, mark.first_line) if mark else (0, 0)
            for item in adapt_input(src, opts, report, count, start, work, pool):
                if isinstance(item, Rejected):
                    rejected.append(item)
                else:
                    batch.append(item)
                if len(batch) >= opts.batch_size or len(rejected) >= opts.batch_size:
                    flush()
            if mark is not None:
                marks.append(mark)  # written once its records are
        flush()
    finally:
        if pool is not None:
            pool.close()
    return report


def store_batch(
    store: Store,
    batch: list[tuple[Interaction, str | None, int | None]],
    rejected: list[Rejected],
    report: IngestReport,
    found: dict[str, set[str]] | None = None,
) -> None:
    """Write one batch and count what the store made of it (new, duplicate, conflicting)."""
    res = store.write_batch(batch, rejected, found)
    report.inserted += res.inserted
    report.duplicates += res.duplicates
    report.quarantined += len(rejected) + res.conflicts
    if res.conflicts:
        report.quarantined_by_reason["conflicting_duplicate"] += res.conflicts
    report.quarantine_repeats += res.quarantine_repeats


@dataclass
class AdaptWork:
    """What adapting records needs, here or in a worker process: the options, and the
    embedded summarizer when each new interaction is to be summarized where it is built
    (`tracewatch run`: its summary then needs no second read of the interaction).

    What building found besides the interactions is left here for `ingest` to write with
    their batch: the summaries, and each content's secrets (for the guard, so that they are
    not collected a second time in the writing process)."""

    opts: IngestOptions
    summarizer: EmbeddedSummarizer | None = None
    secrets: bool = True  # collect them here (for a caller that writes with the guard)
    summaries: list[Summary] = field(default_factory=list)
    found: dict[str, set[str]] = field(default_factory=dict)


# (source, line, interactions, their secrets, rejection, summaries) of one record
Adapted = tuple[
    str, int | None, list[Interaction], list[set[str]], "Rejected | None", list[Summary]
]
_work: AdaptWork | None = None  # a worker process's, set by its initializer


def _set_work(work: AdaptWork) -> None:
    global _work
    _work = work


def adapt_records(
    work: AdaptWork, recs: list[Record]
) -> tuple[list[Adapted], Counter[str], Counter[str]]:
    """Records to what they hold, with the report's counts that building them adds (hint
    mismatches, defaults used): a worker process has no report of its own."""
    report = IngestReport()
    out: list[Adapted] = []
    wanted = work.secrets or work.summarizer is not None
    for rec in recs:
        interactions, rej = build_interactions(rec, work.opts, report)
        found = [collect(inter) if wanted else set() for inter in interactions]
        summaries: list[Summary] = []
        if work.summarizer is not None:
            for inter, secrets in zip(interactions, found, strict=True):
                # one that fails is left to `summarize`, which records why
                with contextlib.suppress(Exception):
                    summaries.append(work.summarizer.summarize_sync(inter, secrets))
        out.append((rec.source, rec.line, interactions, found, rej, summaries))
    return out, report.format_hint_mismatches, report.defaults_used


def _adapt_in_worker(recs: list[Record]) -> tuple[list[Adapted], Counter[str], Counter[str]]:
    assert _work is not None, "worker process not initialised"
    return adapt_records(_work, recs)


def adapt_input(
    src: Path | str,
    opts: IngestOptions,
    report: IngestReport,
    on_bytes: Callable[[int], None] = lambda n: None,
    start: tuple[int, int] = (0, 0),
    work: AdaptWork | None = None,
    pool: WorkerPool | None = None,
) -> Iterator[tuple[Interaction, str | None, int | None] | Rejected]:
    """One input's interactions (with source file and line) and rejections, in file order;
    their summaries (with a summarizer) and secrets are left in `work`.

    The unit of work both engines share: `ingest` writes what it yields to the store, the Ray
    engine writes it to one Parquet file per input. With a pool, records are adapted by
    its workers, a chunk at a time, and come back in the same order.
    """
    work = work or AdaptWork(opts, secrets=False)  # nobody here to hand them to
    parts = chunks(read_records(src, on_bytes, start, parse=False))
    done = (
        pool.map_ordered(_adapt_in_worker, parts)
        if pool is not None
        else (adapt_records(work, p) for p in parts)
    )
    for adapted, hints, defaults in done:
        report.format_hint_mismatches.update(hints)
        report.defaults_used.update(defaults)
        for source, line, interactions, found, rej, summaries in adapted:
            report.records += 1
            if rej is not None:
                report.quarantined_by_reason[rej.reason] += 1
                yield rej
            work.summaries.extend(summaries)
            for inter, secrets in zip(interactions, found, strict=True):
                report.interactions += 1
                report.by_format[inter.source_format] += 1
                if work.secrets:
                    work.found[inter.content_hash] = secrets
                yield (inter, source, line)


POOL_MIN_BYTES = 4 << 20  # inputs smaller than this are adapted here: a pool costs more


def adapt_pool(inputs: list[Path | str], work: AdaptWork) -> WorkerPool | None:
    """Worker processes for adapting these inputs, if there are cores to spare and enough to
    read that starting them pays (stdin is read here)."""
    workers = worker_count()
    size = sum(p.stat().st_size for p in inputs if isinstance(p, Path) and p.is_file())
    if workers < 2 or size < POOL_MIN_BYTES:
        return None
    return WorkerPool(workers, _set_work, (work,))


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
