"""Inspect AI eval logs: the `.json` EvalLog and the `.eval` ZIP container.

Each sample is one interaction. Large content is deduplicated by Inspect into the sample's
`attachments` and referenced as `attachment://<hash>`; those references are resolved before
reading. Messages give the steps (tool calls paired with tool messages by id); tool events
give each call its wall-clock time.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tracewatch.monitor.limits import InputLimits, LimitExceeded, check_depth, default_limits
from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    span,
    ts_from_iso,
)
from tracewatch.trace_adapters.blobs import strip_blobs
from tracewatch.trace_adapters.openai_chat import add_chat_message

_ATTACHMENT = re.compile(r"attachment://([0-9a-f]{32})")


def resolve_attachments(value: Any, attachments: dict[str, str]) -> Any:
    if not attachments:
        return value
    if isinstance(value, str):
        if "attachment://" not in value:
            return value
        return _ATTACHMENT.sub(lambda m: attachments.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: resolve_attachments(v, attachments) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_attachments(v, attachments) for v in value]
    return value


ZIP_ZSTD = 93  # the ZIP method number of Zstandard, which recent Inspect writes


def read_member(zf: zipfile.ZipFile, name: str, limit: int = 1 << 30) -> bytes:
    """One member's bytes, inflated no further than `limit` (a member that claims little and
    inflates to gigabytes is refused having held at most `limit` bytes), Zstandard members
    included (Python 3.11's zipfile has no method 93)."""
    info = zf.getinfo(name)
    if info.compress_type != ZIP_ZSTD:
        with zf.open(name) as fh:
            data = fh.read(limit + 1)
    else:
        data = _read_zstd(zf, info, name, limit)
    if len(data) > limit:
        raise LimitExceeded(
            "too_large",
            f"{name}: inflates past the {limit}-byte limit for one member "
            "(TRACEWATCH_LIMITS max_document_bytes)",
        )
    return data


def _read_zstd(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> bytes:
    import zstandard

    fp = zf.fp
    if fp is None:
        raise AdapterError(f"{name}: the archive is closed")
    fp.seek(info.header_offset)
    header = fp.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise AdapterError(f"{name}: bad local file header")
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    fp.seek(info.header_offset + 30 + name_len + extra_len)
    compressed = fp.read(info.compress_size)
    try:
        with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(compressed)) as reader:
            return reader.read(limit + 1)
    except zstandard.ZstdError as exc:
        raise AdapterError(f"{name}: bad Zstandard data ({exc})") from exc


def load_eval_zip(path: Path, limits: InputLimits | None = None) -> dict[str, Any]:
    """The `.eval` container as the same dict shape as a `.json` EvalLog, read within the
    limits on members, inflated bytes per member and per archive, and nesting."""
    limits = limits or default_limits()
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if len(names) > limits.max_members:
                raise LimitExceeded(
                    "too_large",
                    f"{path.name}: {len(names)} members is over the limit of "
                    f"{limits.max_members} (TRACEWATCH_LIMITS max_members)",
                )
            if "header.json" not in names and "_journal/start.json" not in names:
                raise AdapterError(
                    f"{path.name}: ZIP without header.json: not an Inspect .eval log"
                )
            header_name = "header.json" if "header.json" in names else "_journal/start.json"
            total = 0

            def member(name: str) -> Any:
                nonlocal total
                inflated = read_member(zf, name, limits.max_document_bytes)
                total += len(inflated)
                if total > limits.max_archive_bytes:
                    raise LimitExceeded(
                        "too_large",
                        f"{path.name}: inflates past the {limits.max_archive_bytes}-byte limit "
                        "for one archive (TRACEWATCH_LIMITS max_archive_bytes)",
                    )
                raw = strip_blobs(inflated)
                value = orjson.loads(raw)
                check_depth(raw, limits)
                return value

            log = member(header_name)
            if not isinstance(log, dict):
                raise AdapterError(
                    f"{header_name}: expected a JSON object, found {type(log).__name__}"
                )
            samples = [
                member(name)
                for name in sorted(
                    n for n in names if n.startswith("samples/") and n.endswith(".json")
                )
            ]
    except zipfile.BadZipFile as exc:
        raise AdapterError(f"{path.name}: not a valid ZIP ({exc})") from exc
    except (zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise AdapterError(f"{path.name}: cannot inflate a member ({exc})") from exc
    log["samples"] = samples
    return log


class InspectAIAdapter(Adapter):
    name = "inspect_ai"
    description = "Inspect AI eval logs (.json EvalLog and .eval ZIP), one interaction per sample"
    versions = "EvalLog .json and .eval ZIP (deflate or Zstandard members)"
    extensions = (".eval",)

    def detect(self, doc: Any) -> bool:
        return isinstance(doc, dict) and isinstance(doc.get("eval"), dict) and "samples" in doc

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        spec = doc["eval"]
        samples = doc.get("samples") or []
        if not isinstance(samples, list):
            raise AdapterError("samples: expected a list")
        for n, raw in enumerate(samples):
            if not isinstance(raw, dict):
                raise AdapterError(f"samples[{n}]: expected an object")
            sample = resolve_attachments(
                {k: v for k, v in raw.items() if k != "attachments"}, raw.get("attachments") or {}
            )
            yield self._sample(spec, sample, n)

    def _sample(self, spec: dict[str, Any], sample: dict[str, Any], n: int) -> ParsedTrace:
        b = StepBuilder()
        msgs = sample.get("messages") or []
        for i, msg in enumerate(msgs):
            add_chat_message(b, msg, f"samples[{n}].messages[{i}]")
        call_times = {
            e.get("id"): ts_from_iso(e.get("timestamp"))
            for e in sample.get("events") or []
            if isinstance(e, dict) and e.get("event") == "tool"
        }
        for step in b.steps:
            if step.call_id in call_times:
                step.timestamp = call_times[step.call_id]
        event_times = [
            t
            for e in sample.get("events") or []
            if isinstance(e, dict)
            for t in (ts_from_iso(e.get("timestamp")),)
            if t
        ]
        start, end = span(b.steps)
        if event_times:
            start, end = min(event_times), max(event_times)
        model = spec.get("model")
        for m in msgs:
            if isinstance(m, dict) and m.get("role") == "assistant" and m.get("model"):
                model = m["model"]
                break
        meta: dict[str, Any] = {
            "task": spec.get("task"),
            "run_id": spec.get("run_id"),
            "sample_id": sample.get("id"),
            "epoch": sample.get("epoch"),
        }
        if sample.get("scores"):
            meta["scores"] = sample["scores"]
        native = (
            sample.get("uuid") or f"{spec.get('run_id')}:{sample.get('id')}:{sample.get('epoch')}"
        )
        return ParsedTrace(
            steps=b.steps,
            started_at=start or ts_from_iso(spec.get("created")),
            ended_at=end,
            agent=f"inspect:{spec.get('task')}",
            model=model,
            native_id=str(native),
            metadata={k: v for k, v in meta.items() if v is not None},
        )
