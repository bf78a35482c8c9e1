"""OpenTelemetry GenAI spans (and log records) in OTLP/JSON.

One interaction per trace id. Spans are read in start-time order: `chat`/`invoke_agent` spans
contribute the messages (new input messages only, since each inference span repeats the
history, plus the output messages), `execute_tool` spans contribute tool calls or the results
of calls a model output already requested (joined by `gen_ai.tool.call.id`). Content
attributes are read whether they arrive as JSON strings or as structured values, and the
deprecated names (`gen_ai.system`, `gen_ai.prompt`/`gen_ai.completion`, per-message span events)
are read too. Spans that are not GenAI at all become observation steps, so nothing is dropped.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
    NAVIGATION_ACTIONS,
    ROLE_ACTORS,
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    as_arguments,
    loads_maybe,
    short,
    text_of,
    ts_from_epoch,
)
from tracewatch.trace_adapters.blobs import as_attachment

ACCOUNT_ATTRIBUTES = ("user.id", "enduser.id", "langfuse.user.id", "gen_ai.user.id")
_ROLES = ROLE_ACTORS
_INFERENCE_OPS = {"chat", "generate_content", "text_completion", "invoke_agent", "create_agent"}
_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
    "gen_ai.choice": "assistant",
}


def any_value(v: Any) -> Any:
    """Decode an OTLP/JSON AnyValue."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return attrs_dict((v["kvlistValue"] or {}).get("values", []))
    if "bytesValue" in v:
        raw = base64.b64decode(v["bytesValue"])
        return raw.decode("utf-8", "replace")
    return None


def attrs_dict(attrs: Any) -> dict[str, Any]:
    if isinstance(attrs, dict):  # already decoded (e.g. from the protobuf receiver)
        return attrs
    out: dict[str, Any] = {}
    for a in attrs or []:
        if isinstance(a, dict) and "key" in a:
            out[a["key"]] = any_value(a.get("value"))
    return out


def _messages(value: Any) -> list[dict[str, Any]]:
    value = loads_maybe(value)
    if isinstance(value, dict):
        value = [value]
    return [m for m in value or [] if isinstance(m, dict)] if isinstance(value, list) else []


class OTelGenAIAdapter(Adapter):
    name = "otel_genai"
    description = "OpenTelemetry GenAI spans / log records in OTLP JSON (one interaction per trace)"
    versions = (
        "OTLP/JSON, GenAI semconv 1.3x (and deprecated gen_ai.prompt/completion), OpenInference"
    )

    def detect(self, doc: Any) -> bool:
        return isinstance(doc, dict) and (
            isinstance(doc.get("resourceSpans"), list) or isinstance(doc.get("resourceLogs"), list)
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        spans = list(iter_spans(doc))
        records = list(iter_log_records(doc))
        if not spans and not records:
            raise AdapterError("resourceSpans/resourceLogs: no spans or log records")
        by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in spans + records:
            by_trace[item.get("traceId") or ""].append(item)
        for trace_id, items in by_trace.items():
            yield self.assemble(trace_id, items)

    def assemble(self, trace_id: str, items: list[dict[str, Any]]) -> ParsedTrace:
        """Spans and records of one trace, in any order and from any number of requests."""
        items = sorted(
            items, key=lambda s: int(s.get("startTimeUnixNano") or s.get("timeUnixNano") or 0)
        )
        b = StepBuilder()
        seen_inputs: set[tuple[str, str]] = set()
        agent = model = account = None
        provider = None
        usage = {"input_tokens": 0, "output_tokens": 0}
        for item in items:
            attrs = item["_attrs"]
            account = account or next(
                (str(attrs[k]) for k in ACCOUNT_ATTRIBUTES if attrs.get(k)), None
            )
            agent = agent or attrs.get("gen_ai.agent.name")
            model = model or attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
            provider = provider or attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")
            for key in ("input_tokens", "output_tokens"):
                val = attrs.get(f"gen_ai.usage.{key}")
                if isinstance(val, int):
                    usage[key] += val
            if "_record" in item:
                self._record(b, item, attrs, seen_inputs)
            else:
                self._span(b, item, attrs, seen_inputs)
        starts = [ts_from_epoch(i.get("startTimeUnixNano") or i.get("timeUnixNano")) for i in items]
        ends = [ts_from_epoch(i.get("endTimeUnixNano") or i.get("timeUnixNano")) for i in items]
        starts_ok = [s for s in starts if s]
        ends_ok = [e for e in ends if e]
        resource = items[0].get("_resource", {})
        meta: dict[str, Any] = {"trace_id": trace_id, "spans": len(items)}
        if resource.get("service.name"):
            meta["service"] = resource["service.name"]
        if provider:
            meta["provider"] = provider
        if any(usage.values()):
            meta["usage"] = usage
        return ParsedTrace(
            steps=b.steps,
            started_at=min(starts_ok) if starts_ok else None,
            ended_at=max(ends_ok) if ends_ok else None,
            agent=agent or resource.get("service.name"),
            model=model,
            native_id=trace_id or None,
            account_hint=account,
            metadata=meta,
        )

    def _span(
        self,
        b: StepBuilder,
        span: dict[str, Any],
        attrs: dict[str, Any],
        seen: set[tuple[str, str]],
    ) -> None:
        ts = ts_from_epoch(span.get("startTimeUnixNano"))
        name = str(span.get("name") or "")
        op = attrs.get("gen_ai.operation.name") or name.split(" ", 1)[0]
        failed = (span.get("status") or {}).get("code") in (2, "STATUS_CODE_ERROR") or bool(
            attrs.get("error.type")
        )
        if op == "execute_tool":
            tool = attrs.get("gen_ai.tool.name") or (name.split(" ", 1)[1] if " " in name else None)
            call_id = attrs.get("gen_ai.tool.call.id") or span.get("spanId")
            result = attrs.get("gen_ai.tool.call.result")
            err = attrs.get("error.type") or (span.get("status") or {}).get("message")
            text = short(text_of(loads_maybe(result)) if result is not None else None, 16000)
            if failed and err:
                text = f"{text}\nerror: {err}" if text else f"error: {err}"
            if b._pending_call(call_id) is None:
                found: list[Attachment] = []
                args = as_arguments(attrs.get("gen_ai.tool.call.arguments"), found)
                self._call(b, tool, call_id, args, found, ts)
            b.result(call_id, text, is_error=failed, timestamp=ts)
            return
        if self._sdk_span(b, span, attrs, seen, ts, failed):
            return
        if op in _INFERENCE_OPS or any(k.startswith("gen_ai.") for k in attrs):
            system = attrs.get("gen_ai.system_instructions")
            if system is not None:
                for part in _messages(system):
                    self._input(
                        b, "system", part if "role" in part else {"parts": [part]}, seen, ts
                    )
            for msg in _messages(attrs.get("gen_ai.input.messages") or attrs.get("gen_ai.prompt")):
                self._input(b, msg.get("role", "user"), msg, seen, ts)
            self._indexed(b, attrs, "gen_ai.prompt", seen, ts)
            for ev in span.get("events") or []:
                self._event(b, ev, seen)
            for msg in _messages(
                attrs.get("gen_ai.output.messages") or attrs.get("gen_ai.completion")
            ):
                self._message(b, msg.get("role", "assistant"), msg, ts)
            self._indexed(b, attrs, "gen_ai.completion", seen, ts, output=True)
            if failed:
                b.add(
                    Actor.system,
                    StepKind.observation,
                    text=f"error: {attrs.get('error.type') or name}",
                    is_error=True,
                    timestamp=ts,
                )
            return
        kind = attrs.get("openinference.span.kind")
        if kind == "TOOL":
            found = []
            self._call(
                b,
                attrs.get("tool.name") or name,
                span.get("spanId"),
                as_arguments(attrs.get("input.value"), found),
                found,
                ts,
            )
            b.result(
                span.get("spanId"),
                short(text_of(attrs.get("output.value")), 16000),
                is_error=failed,
            )
            return
        # Not GenAI: keep it as an observation so that nothing in the trace is dropped.
        plain = {k: v for k, v in attrs.items() if isinstance(v, (str, int, float, bool))}
        b.add(
            Actor.environment,
            StepKind.observation,
            text=name or None,
            action="span",
            arguments=plain or None,
            target_url=attrs.get("url.full") or attrs.get("http.url"),
            is_error=failed,
            timestamp=ts,
        )

    def _sdk_span(
        self,
        b: StepBuilder,
        span: dict[str, Any],
        attrs: dict[str, Any],
        seen: set[tuple[str, str]],
        ts: Any,
        failed: bool,
    ) -> bool:
        """The Vercel AI SDK's `ai.*` attributes and OpenInference's flattened LLM messages,
        which carry the conversation where GenAI conventions are not (yet) written."""
        if attrs.get("ai.toolCall.name"):
            call_id = attrs.get("ai.toolCall.id") or span.get("spanId")
            if b._pending_call(call_id) is None:
                found: list[Attachment] = []
                args = as_arguments(attrs.get("ai.toolCall.args"), found)
                self._call(b, attrs["ai.toolCall.name"], call_id, args, found, ts)
            result = attrs.get("ai.toolCall.result")
            b.result(call_id, short(text_of(loads_maybe(result)), 16000), is_error=failed)
            return True
        handled = False
        prompt = loads_maybe(attrs.get("ai.prompt"))
        if isinstance(prompt, dict):
            if isinstance(prompt.get("system"), str):
                self._input(b, "system", {"content": prompt["system"]}, seen, ts)
            if isinstance(prompt.get("prompt"), str):
                self._input(b, "user", {"content": prompt["prompt"]}, seen, ts)
                handled = True
            for msg in _messages(prompt.get("messages")):
                self._input(b, msg.get("role", "user"), msg, seen, ts)
                handled = True
        for msg in _messages(attrs.get("ai.prompt.messages")):
            self._input(b, msg.get("role", "user"), msg, seen, ts)
            handled = True
        n = 0
        while f"llm.input_messages.{n}.message.role" in attrs:
            role = attrs[f"llm.input_messages.{n}.message.role"]
            msg = {"content": attrs.get(f"llm.input_messages.{n}.message.content")}
            self._input(b, role or "user", msg, seen, ts)
            handled = True
            n += 1
        outputs: list[tuple[str, Any]] = []
        n = 0
        while f"llm.output_messages.{n}.message.role" in attrs:
            outputs.append(
                (
                    attrs[f"llm.output_messages.{n}.message.role"] or "assistant",
                    attrs.get(f"llm.output_messages.{n}.message.content"),
                )
            )
            n += 1
        if attrs.get("ai.response.text"):
            outputs.append(("assistant", attrs["ai.response.text"]))
        for role, content in outputs:
            key = ("output:" + str(role), repr(content))
            if key not in seen:
                seen.add(key)
                self._message(b, role, {"content": content}, ts)
            handled = True
        if not handled and attrs.get("openinference.span.kind") in ("AGENT", "CHAIN", "LLM"):
            # an agent or chain span's own input and output, when nothing finer was recorded
            for role, key in (("user", "input.value"), ("assistant", "output.value")):
                value = loads_maybe(attrs.get(key))
                if isinstance(value, (str, list, dict)) and value:
                    text = value if isinstance(value, str) else text_of(value)
                    if text:
                        self._input(b, role, {"content": text}, seen, ts)
                        handled = True
        return handled

    def _record(
        self, b: StepBuilder, rec: dict[str, Any], attrs: dict[str, Any], seen: set[tuple[str, str]]
    ) -> None:
        ts = ts_from_epoch(rec.get("timeUnixNano") or rec.get("observedTimeUnixNano"))
        event = rec.get("eventName") or attrs.get("event.name")
        body = any_value(rec.get("body"))
        if event in _MESSAGE_EVENTS:
            msg = body if isinstance(body, dict) else {"content": body}
            self._message(
                b,
                msg.get("role") or _MESSAGE_EVENTS[event],
                msg.get("message") if isinstance(msg.get("message"), dict) else msg,
                ts,
            )
            return
        if attrs.get("gen_ai.input.messages") or attrs.get("gen_ai.output.messages"):
            for msg in _messages(attrs.get("gen_ai.input.messages")):
                self._input(b, msg.get("role", "user"), msg, seen, ts)
            for msg in _messages(attrs.get("gen_ai.output.messages")):
                self._message(b, msg.get("role", "assistant"), msg, ts)
            return
        plain = {k: v for k, v in attrs.items() if isinstance(v, (str, int, float, bool))}
        b.add(
            Actor.environment,
            StepKind.observation,
            action="log",
            text=text_of(body) if not isinstance(body, dict) else short(body),
            arguments={"severity": rec.get("severityText"), **plain},
            timestamp=ts,
        )

    def _event(self, b: StepBuilder, ev: dict[str, Any], seen: set[tuple[str, str]]) -> None:
        name = ev.get("name")
        attrs = attrs_dict(ev.get("attributes"))
        ts = ts_from_epoch(ev.get("timeUnixNano"))
        if name in _MESSAGE_EVENTS:
            content = (
                attrs.get("content") or attrs.get("gen_ai.event.content") or attrs.get("message")
            )
            msg = loads_maybe(content)
            msg = msg if isinstance(msg, dict) else {"content": content}
            role = _MESSAGE_EVENTS[name]
            if role in ("user", "system"):
                self._input(b, role, msg, seen, ts)
            else:
                self._message(
                    b, role, msg.get("message") if isinstance(msg.get("message"), dict) else msg, ts
                )
        elif name == "gen_ai.client.inference.operation.details":
            for msg in _messages(attrs.get("gen_ai.input.messages")):
                self._input(b, msg.get("role", "user"), msg, seen, ts)
            for msg in _messages(attrs.get("gen_ai.output.messages")):
                self._message(b, msg.get("role", "assistant"), msg, ts)

    def _indexed(
        self,
        b: StepBuilder,
        attrs: dict[str, Any],
        prefix: str,
        seen: set[tuple[str, str]],
        ts: Any,
        output: bool = False,
    ) -> None:
        """OpenLLMetry's flattened `gen_ai.prompt.N.role` / `.content` attributes."""
        n = 0
        while f"{prefix}.{n}.content" in attrs or f"{prefix}.{n}.role" in attrs:
            msg = {
                "role": attrs.get(f"{prefix}.{n}.role"),
                "content": attrs.get(f"{prefix}.{n}.content"),
            }
            if output:
                self._message(b, msg["role"] or "assistant", msg, ts)
            else:
                self._input(b, msg["role"] or "user", msg, seen, ts)
            n += 1

    def _input(
        self, b: StepBuilder, role: str, msg: dict[str, Any], seen: set[tuple[str, str]], ts: Any
    ) -> None:
        key = (role, repr(msg.get("parts") or msg.get("content")))
        if key in seen:
            return
        seen.add(key)
        self._message(b, role, msg, ts)

    def _message(self, b: StepBuilder, role: str, msg: dict[str, Any], ts: Any) -> None:
        actor = _ROLES.get(role, Actor.agent)
        parts = msg.get("parts")
        if parts is None:
            found: list[Attachment] = []
            b.message(actor, text_of(msg.get("content"), found), attachments=found, timestamp=ts)
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                found = []
                self._call(
                    b,
                    fn.get("name"),
                    call.get("id"),
                    as_arguments(fn.get("arguments"), found),
                    found,
                    ts,
                )
            if role == "tool" and msg.get("id"):
                b.result(msg.get("id"), short(text_of(msg.get("content")), 16000))
            return
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            ptype = part.get("type")
            if ptype == "text":
                b.message(actor, part.get("content"), timestamp=ts)
            elif ptype == "reasoning":
                b.message(Actor.agent, part.get("content"), action="reasoning", timestamp=ts)
            elif ptype in ("tool_call", "server_tool_call"):
                found = []
                args = (
                    part.get("arguments") if ptype == "tool_call" else part.get("server_tool_call")
                )
                if b._pending_call(part.get("id")) is None:
                    self._call(
                        b, part.get("name"), part.get("id"), as_arguments(args, found), found, ts
                    )
            elif ptype in ("tool_call_response", "server_tool_call_response"):
                resp = (
                    part.get("response")
                    if ptype == "tool_call_response"
                    else part.get("server_tool_call_response")
                )
                b.result(
                    part.get("id"),
                    short(text_of(resp) if isinstance(resp, (str, list)) else short(resp), 16000),
                )
            elif ptype in ("blob", "uri", "file"):
                att = as_attachment(part.get("content"))
                if att is not None and part.get("mime_type"):
                    att = att.model_copy(update={"media_type": part["mime_type"]})
                b.message(
                    actor,
                    part.get("uri") or part.get("file_id"),
                    attachments=[att] if att else [],
                    timestamp=ts,
                    action=ptype,
                )
            else:
                b.message(actor, text_of(part), timestamp=ts)

    def _call(
        self,
        b: StepBuilder,
        tool: Any,
        call_id: Any,
        args: dict[str, Any] | None,
        found: list[Attachment],
        ts: Any,
    ) -> None:
        url = (args or {}).get("url")
        url = url if isinstance(url, str) else None
        action = (args or {}).get("action") if isinstance((args or {}).get("action"), str) else None
        computer = tool == "computer" and action is not None
        b.add(
            Actor.agent,
            StepKind.computer_action
            if computer
            else (
                StepKind.navigation if url and tool in NAVIGATION_ACTIONS else StepKind.tool_call
            ),
            tool_name=str(tool) if tool else None,
            call_id=str(call_id) if call_id else None,
            action=action or (str(tool) if tool else None),
            arguments=args,
            target_url=url,
            text=(args or {}).get("text") if computer and action in ("type", "key") else None,
            attachments=found,
            timestamp=ts,
        )


def iter_spans(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Flatten OTLP/JSON resourceSpans; each span gets its merged attributes under `_attrs`."""
    for rs in doc.get("resourceSpans") or []:
        if not isinstance(rs, dict):
            raise AdapterError("resourceSpans[]: expected an object")
        resource = attrs_dict((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for span in ss.get("spans") or []:
                if not isinstance(span, dict) or "traceId" not in span:
                    raise AdapterError("resourceSpans[].scopeSpans[].spans[]: span without traceId")
                yield {
                    **span,
                    "_resource": resource,
                    "_attrs": {**resource, **attrs_dict(span.get("attributes"))},
                }


def iter_log_records(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for rl in doc.get("resourceLogs") or []:
        resource = attrs_dict((rl.get("resource") or {}).get("attributes"))
        for sl in rl.get("scopeLogs") or []:
            for rec in sl.get("logRecords") or []:
                if not isinstance(rec, dict):
                    raise AdapterError(
                        "resourceLogs[].scopeLogs[].logRecords[]: expected an object"
                    )
                yield {
                    **rec,
                    "_record": True,
                    "_resource": resource,
                    "_attrs": {**resource, **attrs_dict(rec.get("attributes"))},
                }
