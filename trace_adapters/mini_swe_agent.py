"""mini-swe-agent trajectories (`.traj.json`): the shell agent SWE-agent now recommends.

`{"trajectory_format": "mini-swe-agent-1" | "mini-swe-agent-1.1", "info": {...},
"messages": [...]}` or, in early runs, the bare message list. The agent answers with one
fenced shell block per turn (```bash or ```mswea_bash_command); the next user message is
that command's observation (`<returncode>`, `<output>`); a message with role `exit` (or the
`info.exit_status`) ends the run. Each command becomes a tool call with its observation as the
result, so shell work reads like any other agent's tool use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tracewatch.monitor.models import Actor, StepKind
from tracewatch.trace_adapters.base import (
    Adapter,
    AdapterError,
    ParsedTrace,
    StepBuilder,
    short,
    text_of,
    ts_from_epoch,
)

_BLOCK = re.compile(r"```(?:bash|sh|shell|mswea_bash_command)[ \t]*\n(.*?)```", re.S)
_RETURNCODE = re.compile(r"<returncode>\s*(-?\d+)\s*</returncode>")


def _messages(doc: Any) -> list[Any] | None:
    if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
        return doc["messages"]
    return doc if isinstance(doc, list) else None


class MiniSWEAgentAdapter(Adapter):
    name = "mini_swe_agent"
    description = "mini-swe-agent trajectories (.traj.json): shell commands and their outputs"
    versions = "trajectory_format mini-swe-agent-1 and -1.1, and the early bare message list"

    def detect(self, doc: Any) -> bool:
        if isinstance(doc, dict) and str(doc.get("trajectory_format", "")).startswith(
            "mini-swe-agent"
        ):
            return True
        msgs = _messages(doc)
        if not msgs or not all(isinstance(m, dict) and "role" in m for m in msgs):
            return False
        roles = [m.get("role") for m in msgs]
        if "exit" in roles:
            return True
        # the early bare list: assistant turns with a fenced command, observations with codes
        said = [str(m.get("content")) for m in msgs if m.get("role") == "assistant"]
        seen = [str(m.get("content")) for m in msgs if m.get("role") == "user"]
        return any("mswea_bash_command" in t for t in said) or (
            bool(said)
            and all(_BLOCK.search(t) for t in said)
            and any(_RETURNCODE.search(t) for t in seen)
        )

    def parse(self, doc: Any) -> Iterator[ParsedTrace]:
        msgs = _messages(doc)
        if msgs is None:
            raise AdapterError("expected 'messages' (a list) or a list of messages")
        info = (
            doc.get("info") if isinstance(doc, dict) and isinstance(doc.get("info"), dict) else {}
        )
        b = StepBuilder()
        pending: str | None = None  # the call id whose observation the next user turn is
        model = None
        started = None
        n = 0
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                raise AdapterError(f"messages[{i}]: expected an object")
            role = m.get("role")
            text = text_of(m.get("content"))
            extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
            response = extra.get("response") if isinstance(extra.get("response"), dict) else {}
            model = model or response.get("model")
            started = started or ts_from_epoch(response.get("created"))
            if role == "system":
                b.message(Actor.system, text)
            elif role == "user" and pending is not None:
                code = _RETURNCODE.search(text or "")
                b.result(pending, short(text, 16000), is_error=bool(code and code.group(1) != "0"))
                pending = None
            elif role == "user":
                b.message(Actor.user, text)
            elif role == "assistant":
                block = _BLOCK.search(text or "")
                thought = (text[: block.start()] if block else text or "").strip()
                if thought:
                    b.message(Actor.agent, thought, action="thinking" if block else None)
                if block:
                    n += 1
                    pending = f"cmd-{n}"
                    command = block.group(1).strip()
                    b.add(
                        Actor.agent,
                        StepKind.tool_call,
                        tool_name="bash",
                        call_id=pending,
                        action="run",
                        arguments={"command": command},
                    )
            elif role == "exit":
                b.message(Actor.agent, text or str(info.get("exit_status") or "exit"))
        if info.get("exit_status") and not any(m.get("role") == "exit" for m in msgs):
            b.add(
                Actor.system,
                StepKind.observation,
                text=f"exit status: {info['exit_status']}",
                action="exit",
            )
        if not b.steps:
            raise AdapterError("the trajectory holds no message")
        meta: dict[str, Any] = {}
        for key in ("exit_status", "mini_version"):
            if info.get(key):
                meta[key] = info[key]
        if isinstance(doc, dict):
            if doc.get("trajectory_format"):
                meta["trajectory_format"] = doc["trajectory_format"]
            if doc.get("instance_id"):
                meta["instance_id"] = doc["instance_id"]
        config = info.get("config") if isinstance(info.get("config"), dict) else {}
        configured = config.get("model") if isinstance(config.get("model"), dict) else {}
        yield ParsedTrace(
            steps=b.steps,
            model=model or configured.get("model_name"),
            native_id=doc.get("instance_id") if isinstance(doc, dict) else None,
            started_at=started,
            metadata=meta,
        )
