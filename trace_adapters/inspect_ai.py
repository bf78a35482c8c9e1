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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

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
MEMBER_MAX_BYTES = 1 << 30  # a member that inflates past this is refused, not read


def read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """One member's bytes, Zstandard members included (Python 3.11's zipfile has no method 93).

    A Zstandard member is read from its local header and inflated by `zstandard`, with the
    output bounded so a member that claims little and inflates to gigabytes is refused.
    """
    info = zf.getinfo(name)
    if info.compress_type != ZIP_ZSTD:
        return zf.read(name)
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
            data = reader.read(MEMBER_MAX_BYTES + 1)
    except zstandard.ZstdError as exc:
        raise AdapterError(f"{name}: bad Zstandard data ({exc})") from exc
    if len(data) > MEMBER_MAX_BYTES:
        raise AdapterError(f"{name}: inflates past {MEMBER_MAX_BYTES} bytes")
    return data


def load_eval_zip(path: Path) -> dict[str, Any]:
    """The `.eval` container as the same dict shape as a `.json` EvalLog."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "header.json" not in names and "_journal/start.json" not in names:
                raise AdapterError(
                    f"{path.name}: ZIP without header.json: not an Inspect .eval log"
                )
            header_name = "header.json" if "header.json" in names else "_journal/start.json"
            log = orjson.loads(read_member(zf, header_name))
            samples = []
            for name in sorted(
                n for n in names if n.startswith("samples/") and n.endswith(".json")
            ):
                samples.append(orjson.loads(strip_blobs(read_member(zf, name))))
    except zipfile.BadZipFile as exc:
        raise AdapterError(f"{path.name}: not a valid ZIP ({exc})") from exc
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
