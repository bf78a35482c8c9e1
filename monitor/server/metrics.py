"""Prometheus metrics of one server, in its own registry (two apps in one test process do
not share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tracewatch_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "code"],
            registry=r,
        )
        self.bytes = Counter(
            "tracewatch_request_bytes", "request body bytes received", ["endpoint"], registry=r
        )
        self.accepted = Counter(
            "tracewatch_accepted",
            "interactions stored, and spans kept for assembly",
            ["kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "tracewatch_duplicates",
            "deliveries or interactions already stored",
            ["kind"],
            registry=r,
        )
        self.rejected = Counter(
            "tracewatch_rejected",
            "requests or records refused, by reason",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "tracewatch_queue_depth",
            "work waiting for the background worker",
            ["kind"],
            registry=r,
        )
        self.lag = Gauge(
            "tracewatch_processing_lag_seconds",
            "how long the oldest interaction not yet summarized has waited",
            registry=r,
        )
        self.processed = Counter(
            "tracewatch_worker_runs",
            "background processing passes by outcome",
            ["outcome"],
            registry=r,
        )
        self.traces = Counter(
            "tracewatch_traces_assembled", "OTLP traces closed into interactions", registry=r
        )
        self.secrets_caught = Gauge(
            "tracewatch_secrets_caught",
            "secret values the last guard redacted before a write, by stage (whole database)",
            ["stage"],
            registry=r,
        )
        self.failures = Gauge(
            "tracewatch_processing_failures",
            "items a background stage failed on and skipped, by stage (whole database)",
            ["stage"],
            registry=r,
        )
        self.stage_errors = Gauge(
            "tracewatch_worker_stage_failing",
            "1 while the last pass of a background stage failed as a whole",
            ["stage"],
            registry=r,
        )
