"""OpenHands event streams: a list of serialized Action and Observation events.

Observations point at the action they answer through `cause`; that id, not the position in the
list, pairs them. Agent-state bookkeeping events (`change_agent_state`, `agent_state_changed`,
`null` observations) carry no behaviour and are counted in metadata instead of becoming steps.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, Attachment, StepKind
from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    short,
    span,
    text_of,
    ts_from_iso,
)
from tracewatch.trace_adapters.blobs import scrub

_SOURCES = {"user": Actor.user, "agent": Actor.agent, "environment": Actor.environment}
_BOOKKEEPING_ACTIONS = {"change_agent_state", "recall", "condensation", "null"}
_BOOKKEEPING_OBS = {"agent_state_changed", "null", "recall", "condensation"}
_GOTO = re.compile(r"""goto\(\s*["']([^"']+)["']""")
_FILL = re.compile(r"""fill\(\s*["'][^"']*["']\s*,\s*["']([^"']*)["']""")
# BrowserGym's high-level actions that type text, and where the text is among the arguments.
_TYPED_ARG = {"fill": 1, "type": 1, "keyboard_type": 0, "keyboard_insert_text": 0}


def browser_actions(code: str) -> list[tuple[str, list[str]]] | None:
    """The calls in a `browse_interactive` action's code (BrowserGym's action language:
    `goto(url)`, `fill(bid, value)`, `click(bid)`, ...), read with `ast`, never run. None when
    the code is not a sequence of plain calls with literal arguments."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    calls: list[tuple[str, list[str]]] = []
    for node in tree.body:
        call = node.value if isinstance(node, ast.Expr) else None
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
            return None
        if not all(isinstance(a, ast.Constant) for a in call.args):
            return None
        calls.append((call.func.id, [str(a.value) for a in call.args]))  # type: ignore[attr-defined]
    return calls or None


def events_of(doc: Any) -> list[Any] | None:
    """The event list of a document: the list itself, or its `events` (a session folder)."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("events"), list):
        return doc["events"]
    return None


class OpenHandsAdapter(Adapter):
    name = "openhands"
    description = "OpenHands event streams (actions, observations linked by cause)"
    versions = "OpenHands 0.x event streams and V0 session folders (sessions/<id>/events)"

    def detect(self, doc: Any) -> bool:
        events = events_of(doc)
        return bool(events) and all(
            isinstance(e, dict) and "source" in e and ("action" in e or "observation" in e)
            for e in events
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        events = events_of(doc)
        if events is None:
            raise AdapterError("expected a list of OpenHands events")
        b = StepBuilder()
        model: str | None = None
        states: list[str] = []
        for i, ev in enumerate(events):
            where = f"events[{i}]"
            if not isinstance(ev, dict):
                raise AdapterError(f"{where}: expected an object")
            tcm = ev.get("tool_call_metadata") or {}
            resp = tcm.get("model_response") or {}
            if isinstance(resp, dict) and resp.get("model") and not model:
                model = resp["model"]
            ts = ts_from_iso(ev.get("timestamp"))
            if "action" in ev:
                self._action(b, ev, tcm, ts, where, states)
            else:
                self._observation(b, ev, ts, states)
        start, end = span(b.steps)
        return_meta: dict[str, Any] = {}
        if states:
            return_meta["agent_states"] = states
        yield ParsedTrace(
            steps=b.steps,
            started_at=start,
            ended_at=end,
            agent="openhands",
            model=model,
            metadata=return_meta,
        )

    def _action(
        self,
        b: StepBuilder,
        ev: dict[str, Any],
        tcm: dict[str, Any],
        ts: Any,
        where: str,
        states: list[str],
    ) -> None:
        action = ev["action"]
        args = ev.get("args") or {}
        if not isinstance(args, dict):
            raise AdapterError(f"{where}.args: expected an object")
        actor = _SOURCES.get(ev.get("source"))
        if actor is None:
            raise AdapterError(f"{where}.source: unknown source {ev.get('source')!r}")
        if action in _BOOKKEEPING_ACTIONS:
            if args.get("agent_state"):
                states.append(str(args["agent_state"]))
            return
        found: list[Attachment] = []
        args = scrub(args, found)
        thought = args.get("thought")
        if thought and action not in ("think", "finish", "message"):
            b.message(Actor.agent, thought, action="thought", timestamp=ts)
        call_id = f"oh:{ev.get('id')}"
        tool = tcm.get("function_name")
        common = {"call_id": call_id, "timestamp": ts, "attachments": found, "tool_name": tool}
        if action == "system":  # the system prompt the session started with
            b.message(Actor.system, args.get("content") or ev.get("message"), timestamp=ts)
        elif action == "message":
            b.message(actor, args.get("content") or ev.get("message"), **common)
        elif action in ("finish", "think"):
            text = args.get("final_thought") or args.get("thought") or ev.get("message")
            b.message(Actor.agent, text, action=action, **common)
        elif action in ("run", "run_ipython"):
            cmd = args.get("command") or args.get("code")
            b.add(
                actor,
                StepKind.tool_call,
                action=action,
                text=cmd,
                arguments={k: v for k, v in args.items() if k in ("command", "code", "is_input")},
                **common,
            )
        elif action in ("read", "write", "edit"):
            keep = ("path", "command", "start", "end", "content", "old_str", "new_str", "file_text")
            b.add(
                actor,
                StepKind.tool_call,
                action=action,
                target_app=args.get("path"),
                arguments={k: v for k, v in args.items() if k in keep and v not in (None, "")},
                **common,
            )
        elif action == "browse":
            b.add(
                actor,
                StepKind.navigation,
                action="browse",
                target_url=args.get("url"),
                arguments={"url": args.get("url")},
                **common,
            )
        elif action == "browse_interactive" and (
            calls := browser_actions(str(args.get("browser_actions") or ""))
        ):
            # one step per browser action, so a form's fields are each typed text; the
            # observation answers the last of them
            for n, (name, a) in enumerate(calls):
                last = n == len(calls) - 1
                fields = {**common, "call_id": call_id if last else None}
                if name == "goto" and a:
                    b.add(actor, StepKind.navigation, action="goto", target_url=a[0], **fields)
                elif name == "send_msg_to_user" and a:
                    b.message(Actor.agent, a[0], action=name, **fields)
                elif name in _TYPED_ARG and len(a) > _TYPED_ARG[name]:
                    typed = a[_TYPED_ARG[name]]
                    b.add(
                        actor,
                        StepKind.computer_action,
                        action="fill",
                        text=typed,
                        arguments={"bid": a[0] if _TYPED_ARG[name] else None, "text": typed},
                        **fields,
                    )
                else:
                    b.add(
                        actor,
                        StepKind.computer_action,
                        action=name,
                        arguments={"args": a},
                        **fields,
                    )
        elif action == "browse_interactive":
            code = str(args.get("browser_actions") or "")
            goto = _GOTO.search(code)
            fill = _FILL.search(code)
            b.add(
                actor,
                StepKind.computer_action,
                action="browse_interactive",
                target_url=goto.group(1) if goto else None,
                text=fill.group(1) if fill else None,
                arguments={"browser_actions": code},
                **common,
            )
        else:  # call_tool_mcp, delegate, and actions added in later versions
            name = args.get("name") if action == "call_tool_mcp" else None
            b.add(
                actor,
                StepKind.tool_call,
                action=action,
                arguments={k: v for k, v in args.items() if k != "thought"},
                **{**common, "tool_name": name or tool or action},
            )

    def _observation(self, b: StepBuilder, ev: dict[str, Any], ts: Any, states: list[str]) -> None:
        obs = ev["observation"]
        extras = ev.get("extras") or {}
        if obs in _BOOKKEEPING_OBS:
            if extras.get("agent_state"):
                states.append(str(extras["agent_state"]))
            return
        found: list[Attachment] = []
        extras = scrub(extras, found)
        text = text_of(ev.get("content")) or ev.get("message")
        exit_code = (extras.get("metadata") or {}).get("exit_code")
        is_error = (
            obs == "error"
            or ev.get("success") is False
            or (isinstance(exit_code, int) and exit_code != 0)
        )
        cause = ev.get("cause")
        b.result(
            f"oh:{cause}" if cause is not None else None,
            short(text, 16000),
            is_error=is_error,
            attachments=found,
            target_url=extras.get("url"),
            timestamp=ts,
            tool_name=obs,
        )
