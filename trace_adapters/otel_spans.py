"""Spans as SDKs write them outside OTLP: lists of span objects, one trace or many.

Three shapes are common on disk: OpenInference / OpenTelemetry JS ReadableSpan lists
(`spanContext.traceId`, `startTime` as `[seconds, nanos]`, attributes as a plain object, as
Mastra and the Vercel AI SDK fixtures are written), the Python ConsoleSpanExporter's objects
(`context.trace_id` as 0x-hex, ISO `start_time`, written one after another or in an array),
and OTLP-like lists with `traceId`/`startTimeUnixNano`. Each is normalised to the OTLP span the
GenAI assembler reads, so the same semantics (GenAI, OpenInference, Vercel AI) apply to all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    ts_from_epoch,
    ts_from_iso,
)
from tracewatch.trace_adapters.otel_genai import OTelGenAIAdapter, attrs_dict

_TIME_KEYS = ("startTime", "start_time", "startTimeUnixNano")


def _nanos(value: Any) -> int | None:
    """A span time as epoch nanoseconds: [s, ns] pairs, ISO strings, or epoch numbers."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0] * 1_000_000_000 + value[1]
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        dt = ts_from_iso(value)
        return int(dt.timestamp() * 1e9) if dt else None
    dt = ts_from_epoch(value)  # seconds, ms, us or ns, by magnitude
    return int(dt.timestamp() * 1e9) if dt else None


def _hex(value: Any) -> str:
    return str(value or "").removeprefix("0x")


def _is_span(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("name"), str)
        and any(k in item for k in _TIME_KEYS)
        and isinstance(item.get("attributes", {}), (dict, list))
    )


def _status_code(status: Any) -> int:
    if not isinstance(status, dict):
        return 0
    code = status.get("code", status.get("status_code"))
    return 2 if code in (2, "ERROR", "STATUS_CODE_ERROR", "StatusCode.ERROR") else 0


def normalise(span: dict[str, Any]) -> dict[str, Any]:
    """One span of any of the three shapes as the OTLP span the assembler reads."""
    ctx = span.get("spanContext") or span.get("context") or {}
    trace_id = _hex(span.get("traceId") or ctx.get("traceId") or ctx.get("trace_id"))
    span_id = _hex(span.get("spanId") or ctx.get("spanId") or ctx.get("span_id"))
    parent = _hex(span.get("parentSpanId") or span.get("parent_id") or span.get("parentId"))
    resource = attrs_dict((span.get("resource") or {}).get("attributes"))
    attrs = attrs_dict(span.get("attributes"))
    events = []
    for ev in span.get("events") or []:
        if isinstance(ev, dict):
            events.append(
                {
                    "name": ev.get("name"),
                    "timeUnixNano": _nanos(ev.get("time") or ev.get("timestamp")),
                    "attributes": attrs_dict(ev.get("attributes")),
                }
            )
    start = next((span[k] for k in _TIME_KEYS if k in span), None)
    end = next((span[k] for k in ("endTime", "end_time", "endTimeUnixNano") if k in span), None)
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": span.get("name"),
        "startTimeUnixNano": _nanos(start),
        "endTimeUnixNano": _nanos(end),
        "status": {"code": _status_code(span.get("status"))},
        "events": events,
        "_resource": resource,
        "_attrs": {**resource, **attrs},
    }


class OTelSpanListAdapter(Adapter):
    name = "otel_spans"
    description = (
        "span lists outside OTLP: OpenInference / OTel JS ReadableSpans (Mastra, Vercel AI SDK) "
        "and the OTel Python console exporter (one interaction per trace)"
    )
    versions = "ReadableSpan JSON (OTel JS 1.x/2.x), ConsoleSpanExporter (OTel Python 1.x)"

    def detect(self, doc: Any) -> bool:
        items = doc.get("spans") if isinstance(doc, dict) else doc
        return isinstance(items, list) and bool(items) and all(_is_span(s) for s in items)

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        items = doc.get("spans") if isinstance(doc, dict) else doc
        if not isinstance(items, list) or not items:
            raise AdapterError("expected a list of spans")
        by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for i, span in enumerate(items):
            if not _is_span(span):
                raise AdapterError(f"[{i}]: not a span (needs name, a start time, attributes)")
            norm = normalise(span)
            by_trace[norm["traceId"]].append(norm)
        assembler = OTelGenAIAdapter()
        for trace_id, spans in by_trace.items():
            yield assembler.assemble(trace_id, spans)
