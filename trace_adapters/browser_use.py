"""browser-use AgentHistoryList (`history[]` of model_output / result / state / metadata).

Both the older layout (`model_output.current_state{...}`, `go_to_url`, `click_element`) and the
newer one (flattened `thinking`/`next_goal`, `navigate`, `click`, `screenshot_path`) are read.
browser-use has no call ids: `result[i]` is by definition the result of `action[i]` in the same
history item, so that is the pairing, expressed as a synthetic id "<step>:<i>".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    short,
    span,
    text_of,
    ts_from_epoch,
)
from tracewatch.trace_adapters.blobs import as_attachment, scrub

_NAVIGATE = {"navigate", "go_to_url", "open_tab", "open_url", "switch_tab_url"}
_SEARCH = {"search_google": "https://www.google.com/search?q=", "search": None}
_ACTION_ALIASES = {
    "go_to_url": "navigate",
    "click_element": "click",
    "click_element_by_index": "click",
    "input_text": "input_text",
    "send_keys": "send_keys",
}


class BrowserUseAdapter(Adapter):
    name = "browser_use"
    description = "browser-use AgentHistoryList (old and new layouts)"
    versions = "AgentHistoryList of browser-use 0.1 (current_state, go_to_url) and 0.2+"

    def detect(self, doc: Any) -> bool:
        if not isinstance(doc, dict) or not isinstance(doc.get("history"), list):
            return False
        items = doc["history"]
        return bool(items) and all(
            isinstance(h, dict) and ("model_output" in h or "state" in h) and "result" in h
            for h in items
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        b = StepBuilder()
        for n, item in enumerate(doc["history"]):
            self._item(b, item, n)
        start, end = span(b.steps)
        usage = doc.get("usage")
        yield ParsedTrace(
            steps=b.steps,
            started_at=start,
            ended_at=end,
            agent="browser-use",
            metadata={"usage": usage} if usage else {},
        )

    def _item(self, b: StepBuilder, item: dict[str, Any], n: int) -> None:
        where = f"history[{n}]"
        meta = item.get("metadata") or {}
        ts = ts_from_epoch(meta.get("step_start_time"))
        step_no = meta.get("step_number", n)
        state = item.get("state") or {}
        page_url = state.get("url")
        shots: list[Attachment] = []
        for key in ("screenshot", "screenshot_path"):
            att = as_attachment(state.get(key))
            if att is not None:
                shots.append(att)
        if page_url or shots:
            # What the browser showed when this step began: page, title and screenshot.
            b.add(
                Actor.environment,
                StepKind.observation,
                text=state.get("title") or None,
                target_url=page_url,
                timestamp=ts,
                attachments=shots,
            )
        output = item.get("model_output")
        actions: list[Any] = []
        if output is not None:
            if not isinstance(output, dict):
                raise AdapterError(f"{where}.model_output: expected an object or null")
            cs = output.get("current_state") or output
            plan = [
                f"{label}: {cs[key]}"
                for key, label in (
                    ("thinking", "thinking"),
                    ("evaluation_previous_goal", "evaluation"),
                    ("memory", "memory"),
                    ("next_goal", "next goal"),
                )
                if cs.get(key)
            ]
            if plan:
                b.message(
                    Actor.agent, "\n".join(plan), action="plan", timestamp=ts, target_url=page_url
                )
            actions = output.get("action") or []
            if not isinstance(actions, list):
                raise AdapterError(f"{where}.model_output.action: expected a list")
        elements = state.get("interacted_element") or []
        for i, action in enumerate(actions):
            if not isinstance(action, dict) or len(action) != 1:
                raise AdapterError(f"{where}.model_output.action[{i}]: expected {{name: params}}")
            raw_name, params = next(iter(action.items()))
            found: list[Attachment] = []
            params = scrub(params if isinstance(params, dict) else {"value": params}, found)
            name = _ACTION_ALIASES.get(raw_name, raw_name)
            element = elements[i] if i < len(elements) else None
            if isinstance(element, dict):
                attrs = element.get("attributes") or {}
                params = {
                    **params,
                    "element": {
                        k: v
                        for k, v in {
                            "tag": element.get("tag_name") or element.get("node_name"),
                            "href": attrs.get("href"),
                            "name": attrs.get("name") or attrs.get("aria-label"),
                            "type": attrs.get("type"),
                            "id": attrs.get("id"),
                        }.items()
                        if v
                    },
                }
            call_id = f"{step_no}:{i}"
            if raw_name in _NAVIGATE:
                kind, url, text = StepKind.navigation, params.get("url"), None
            elif raw_name in _SEARCH:
                query = params.get("query") or ""
                base = _SEARCH[raw_name]
                kind, text = StepKind.navigation, query
                url = f"{base}{quote_plus(query)}" if base else None
            elif raw_name == "done":
                b.message(
                    Actor.agent,
                    params.get("text") or "done",
                    action="done",
                    arguments={"success": params.get("success")},
                    timestamp=ts,
                )
                continue
            else:
                kind, url = StepKind.computer_action, page_url
                text = params.get("text") if name in ("input_text", "send_keys") else None
                if name == "send_keys":
                    text = params.get("keys") or text
            b.add(
                Actor.agent,
                kind,
                tool_name="browser",
                call_id=call_id,
                action=name,
                arguments=params,
                target_url=url,
                text=text,
                timestamp=ts,
                attachments=found,
            )
        results = item.get("result") or []
        for i, res in enumerate(results):
            if not isinstance(res, dict):
                continue
            err = res.get("error")
            text = text_of(res.get("extracted_content")) or text_of(res.get("long_term_memory"))
            if err:
                text = f"{text}\nerror: {err}" if text else f"error: {err}"
            if not text and not err:
                continue
            b.result(
                f"{step_no}:{i}" if i < len(actions) else None,
                short(text, 16000),
                is_error=bool(err),
                timestamp=ts,
                tool_name="browser",
            )
