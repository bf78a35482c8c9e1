"""An errand as a function-calling agent would run it: OpenAI Chat `tool_calls`, no browser.

The generator's errands are written as UI steps (open a page, type, click a button). A
platform that gives its agents function tools sees the same errand as calls: the form that was
filled and the button that was pressed become one call with the fields as arguments
(`create_account(site, email, password)`, `submit_review(site, product_id, rating, text)`),
a page that was only read becomes `open_page(url)`, and a page that held a form is not
visited at all: the site is an argument of the call. The tool names are the ones such APIs use,
chosen here per button and page; the monitor's reader (`summarizers/tool_semantics.py`) never
sees this table, only the names, as it would on real traffic.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from tracewatch.eval.corpus import Errand

_FAILED = re.compile(r"\b(fail(ed)?|incorrect|denied|locked|invalid|error)\b", re.I)
# button label -> tool name; the fields typed since the page opened become its arguments
_BUTTONS = {
    "create account": "create_account",
    "post reply": "post_comment",
    "submit review": "submit_review",
    "add to cart": "add_to_cart",
    "place order": "checkout",
    "like": "like_post",
    "upvote": "upvote_post",
    "follow": "follow_user",
    "send": "send_email",
    "contact info": "get_user_profile",
    "next empty row": "append_sheet_row",
}
_FIELDS = {
    "email": "email",
    "username": "username",
    "password": "password",
    "quantity": "quantity",
    "to": "to",
    "subject": "subject",
    "body": "body",
    "review text": "text",
    "search box": "query",
}


def _site(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.hostname or "").removeprefix("www."), parts.path.strip("/")


_GENERIC = {
    "p", "t", "in", "d", "u", "reviews", "new", "edit", "home", "welcome", "story", "comments",
}  # fmt: skip
_STARS = re.compile(r"^([1-5]) stars?$")


def _args(page: str, fields: dict[str, Any], typed: list[str]) -> dict[str, Any]:
    site, path = _site(page)
    args: dict[str, Any] = {"site": site}
    named = [p for p in path.split("/") if p and p not in _GENERIC]
    specific = [p for p in named if any(c.isdigit() or c in "-_." for c in p)]
    if named and not named[0].startswith(("signup", "login", "checkout", "compose")):
        args["id"] = (specific or named)[-1]
    args.update(fields)
    loose = [t for t in typed if t not in fields.values()]
    if loose:
        args["text"] = " ".join(loose)
    return args


def render_tools(errand: Errand, rng: random.Random) -> dict[str, Any]:
    """An OpenAI Chat completion's messages with one tool call per submitted form."""
    failed = bool(_FAILED.search(errand.outcome))
    calls: list[tuple[str, dict[str, Any]]] = []
    page = "about:blank"
    fields: dict[str, Any] = {}
    typed: list[str] = []
    focus: str | None = None

    acted = True  # whether a call was made on the current page (else it was only read)

    def flush(name: str) -> None:
        nonlocal fields, typed, acted
        args = _args(page, fields, typed)
        if name == "login":
            args["username"] = args.pop("email", args.get("username", ""))
        calls.append((name, args))
        fields, typed, acted = {}, [], True

    def leave() -> None:
        # An API agent fetches a page only to read it; a form is one call, not a visit.
        if typed or fields:
            flush("fill_form")
        elif not acted:
            calls.append(("open_page", {"url": page}))

    for act in errand.acts:
        if act.kind == "open" and act.url:
            leave()
            page, acted = act.url, False
        elif act.kind == "click":
            label = (act.label or "").lower()
            if stars := _STARS.match(label):
                fields["rating"] = int(stars.group(1))
            elif label in _BUTTONS:
                flush(_BUTTONS[label])
            focus = _FIELDS.get(label)
        elif act.kind == "type" and act.text:
            if focus:
                fields[focus] = act.text
                focus = None
            else:
                typed.append(act.text)
        elif act.kind == "key" and (act.text or "").lower() in ("return", "enter"):
            _, path = _site(page)
            if "login" in path or "password" in fields:
                flush("login")
            elif typed or fields:
                flush("search")
    leave()

    answered: list[tuple[str, dict[str, Any], str]] = []
    for i, (name, args) in enumerate(calls):
        last = i == len(calls) - 1 or all(n == "open_page" for n, _ in calls[i + 1 :])
        if name == "open_page":
            result = f"Loaded {args['url']}"
        elif name in ("login", "create_account", "checkout", "submit_review", "post_comment"):
            result = (
                orjson.dumps({"error": errand.outcome}).decode()
                if failed and (last or name == "login")
                else '{"ok": true}'
            )
        else:
            result = '{"ok": true}'
        answered.append((name, args, result))
    return chat_trace(
        errand.prompt, answered, errand.outcome, lambda _: f"call_{rng.randbytes(8).hex()}"
    )


def chat_trace(
    prompt: str,
    calls: list[tuple[str, dict[str, Any], str]],
    final: str,
    call_id: Callable[[int], str] = lambda i: f"call_{i}",
) -> dict[str, Any]:
    """OpenAI Chat messages: the user's prompt, each (tool, arguments, result) as an assistant
    `tool_calls` message and its `tool` answer, then the agent's last words."""
    msgs: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    for i, (name, args, result) in enumerate(calls):
        cid = call_id(i)
        fn = {"name": name, "arguments": orjson.dumps(args).decode()}
        msgs.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": cid, "type": "function", "function": fn}],
            }
        )
        msgs.append({"role": "tool", "tool_call_id": cid, "content": result})
    msgs.append({"role": "assistant", "content": final})
    return {"messages": msgs}
