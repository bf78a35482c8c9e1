"""OTLP/HTTP trace requests in, one OTLP/JSON document per completed trace out.

Protobuf bodies are decoded with opentelemetry-proto and turned into the OTLP/JSON shape
(hex trace and span ids, as the OTLP/JSON encoding requires), so the same `otel_genai`
adapter reads what a file dump and what a live exporter sends.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson


class OtlpError(ValueError):
    """A body that is not an OTLP trace request; the message says what is wrong."""


@dataclass
class SpanRow:
    trace_id: str
    span_id: str
    is_root: bool
    resource: dict[str, Any]
    scope: dict[str, Any]
    span: dict[str, Any]


def _hex(value: str) -> str:
    """MessageToDict writes bytes as base64; OTLP/JSON wants lowercase hex."""
    if not value:
        return ""
    try:
        return base64.b64decode(value, validate=True).hex()
    except ValueError:
        return value


def decode_protobuf(body: bytes) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    try:
        msg = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise OtlpError(f"not an OTLP ExportTraceServiceRequest (protobuf): {exc}") from None
    doc = MessageToDict(msg)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _hex(span[key])
                for link in span.get("links", []):
                    for key in ("traceId", "spanId"):
                        if key in link:
                            link[key] = _hex(link[key])
    return doc


def decode(body: bytes, content_type: str) -> dict[str, Any]:
    if "protobuf" in content_type:
        return decode_protobuf(body)
    if "json" in content_type or not content_type:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise OtlpError(f"body is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise OtlpError("an OTLP/JSON request is an object with resourceSpans")
        return doc
    raise OtlpError(
        f"unsupported content-type {content_type!r}: send application/x-protobuf or "
        "application/json"
    )


@dataclass
class BadSpan:
    """One span of an otherwise readable request that cannot be kept as part of a trace."""

    where: str
    error: str
    span: Any


def split_spans(doc: dict[str, Any]) -> tuple[list[SpanRow], list[BadSpan]]:
    """The readable spans and, apart, those that are not (OTLP's partial success).

    A body whose structure is wrong is refused whole (OtlpError). A span without its ids is
    set aside, so one broken span does not cost its neighbours: the exporter is told how many
    were rejected and does not retry (OTLP/HTTP partial success).
    """
    spans = doc.get("resourceSpans")
    if not isinstance(spans, list):
        raise OtlpError("resourceSpans: expected a list")
    rows: list[SpanRow] = []
    bad: list[BadSpan] = []
    for i, rs in enumerate(spans):
        if not isinstance(rs, dict):
            raise OtlpError(f"resourceSpans.{i}: expected an object")
        resource = rs.get("resource") or {}
        for j, ss in enumerate(rs.get("scopeSpans") or []):
            if not isinstance(ss, dict):
                raise OtlpError(f"resourceSpans.{i}.scopeSpans.{j}: expected an object")
            scope = ss.get("scope") or {}
            for k, span in enumerate(ss.get("spans") or []):
                where = f"resourceSpans.{i}.scopeSpans.{j}.spans.{k}"
                if not isinstance(span, dict):
                    bad.append(BadSpan(where, "expected an object", span))
                    continue
                trace_id, span_id = span.get("traceId"), span.get("spanId")
                if not trace_id or not span_id:
                    bad.append(BadSpan(where, "traceId and spanId are required", span))
                    continue
                rows.append(
                    SpanRow(
                        trace_id=str(trace_id),
                        span_id=str(span_id),
                        is_root=not span.get("parentSpanId"),
                        resource=resource,
                        scope=scope,
                        span=span,
                    )
                )
    return rows, bad


def assemble(spans: list[tuple[str, str, str]]) -> dict[str, Any]:
    """One OTLP/JSON document from stored (resource, scope, span) JSON triples of one trace."""
    by_resource: dict[str, dict[str, list[Any]]] = {}
    for resource, scope, span in spans:
        by_resource.setdefault(resource or "{}", {}).setdefault(scope or "{}", []).append(
            orjson.loads(span)
        )
    return {
        "resourceSpans": [
            {
                "resource": orjson.loads(res),
                "scopeSpans": [
                    {"scope": orjson.loads(scope), "spans": items}
                    for scope, items in scopes.items()
                ],
            }
            for res, scopes in by_resource.items()
        ]
    }


def _attr(attributes: Any, key: str) -> str | None:
    for a in attributes or []:
        if isinstance(a, dict) and a.get("key") == key:
            v = a.get("value") or {}
            for kind in ("stringValue", "intValue"):
                if v.get(kind) not in (None, ""):
                    return str(v[kind])
    return None


def identity(doc: dict[str, Any], keys: list[str]) -> str | None:
    """The account a trace names: the first key found on any span, then on its resource."""
    for key in keys:
        for rs in doc.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    if found := _attr(span.get("attributes"), key):
                        return found
        for rs in doc.get("resourceSpans", []):
            if found := _attr((rs.get("resource") or {}).get("attributes"), key):
                return found
    return None
