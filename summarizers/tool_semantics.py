"""What a function-calling agent did, read from its tool calls.

A computer-use agent shows its errand in the pages it reaches (`/signup`, `/checkout`); an
agent with function tools shows it in the calls it makes: `create_account(email=...)`,
`login(username=...)`, `submit_review(product_id=..., rating=5)`, `like_post(post_id=...)`.
This maps a call to the same transaction kinds, with the outcome its own result reports and
the thing it acted on, so the account rubrics read both kinds of agent alike.

Names are split into words (`likePost`, `like_post`, `posts.like` are all `like post`) and
matched on verbs and objects, never on what the arguments say. A call that only reads
(`get_reviews`, `list_orders`) is not a transaction; browser and computer tools (`navigate`,
`click`, `computer`) are left to the page rules.
"""

from __future__ import annotations

import re
from typing import Any

from tracewatch.monitor.models import Step, domain_of
from tracewatch.summarizers.models import Outcome, TransactionKind
from tracewatch.summarizers.outcome_words import CALL_FAILURE

READS = {
    "get",
    "list",
    "read",
    "fetch",
    "search",
    "view",
    "find",
    "lookup",
    "show",
    "query",
    "check",
    "count",
    "describe",
    "retrieve",
    "browse",
    "load",
    "is",
    "has",
    "validate",
}
# Calls that take something back are not the errand they undo.
_UNDOES = {"unlike", "unfollow", "unsubscribe", "delete", "remove", "cancel", "undo", "revoke"}
# Generic transport or navigation tools: their name says how, not what the errand was.
_NOT_ERRANDS = {
    "http",
    "https",
    "request",
    "api",
    "curl",
    "webhook",
    "graphql",
    "rest",
    "url",
    "link",
    "redirect",
    "browser",
    "navigate",
    "click",
    "computer",
    "bash",
    "shell",
    "limit",
}
_MESSAGE_NOUNS = {"email", "emails", "mail", "message", "messages", "dm", "sms", "inbox", "chat"}
_SEND = {"send", "reply", "write", "compose", "forward", "dm", "message", "email", "mail"}
# (kind, phrases any of which must appear in the name's words), first match wins.
_PHRASES: list[tuple[TransactionKind, str]] = [
    ("payment", "send money|transfer money|transfer funds|pay|payment|wire money|wire transfer"),
    (
        "signup",
        "sign up|signup|register|registration|create account|create user|new account|"
        "open account|enroll",
    ),
    ("login", "log in|login|sign in|signin|authenticate"),
    ("coupon", "redeem|apply coupon|apply promo|apply voucher|apply code|claim offer|claim code"),
    (
        "listing",
        "create listing|post listing|publish listing|new listing|list item|sell item|post ad",
    ),
    ("purchase", "checkout|purchase|buy|place order|create order|submit order"),
    ("review", "review|rate|rating"),
    ("share", "share|retweet|repost|reblog"),
    ("upvote", "upvote|vote"),
    ("like", "like|favorite|favourite|heart|react"),
    ("follow", "follow|subscribe"),
    ("post", "post|comment|reply|publish|tweet|toot"),
]
_KINDS = [(kind, [tuple(p.split()) for p in alts.split("|")]) for kind, alts in _PHRASES]
# Arguments that name the thing acted on, most specific first.
_OBJECT_KEYS = (
    "product_id",
    "item_id",
    "listing_id",
    "post_id",
    "thread_id",
    "video_id",
    "comment_id",
    "review_id",
    "sku",
    "asin",
    "event_id",
    "ticket_id",
    "profile_id",
    "user_id",
    "handle",
    "username",
    "user",
    "product",
    "item",
    "listing",
    "post",
    "thread",
    "video",
    "url",
    "target",
    "id",
)
_PERSON_NOUNS = {
    "profile",
    "profiles",
    "user",
    "users",
    "person",
    "people",
    "member",
    "members",
    "contact",
    "contacts",
    "employee",
    "employees",
    "customer",
    "customers",
}
_SITE_KEYS = (
    "site",
    "domain",
    "host",
    "website",
    "forum",
    "board",
    "subreddit",
    "community",
    "group",
    "channel",
    "space",
    "blog",
    "platform",
)
_QUANTITY_KEYS = ("quantity", "qty", "units", "count", "tickets", "seats")
_RATING_KEYS = ("rating", "stars", "score")
MAX_PER_INTERACTION = 50


def words(name: str) -> list[str]:
    """`createUserAccount`, `create_user_account`, `users.create-account` -> words."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _has(ws: list[str], seq: tuple[str, ...]) -> bool:
    n = len(seq)
    return any(tuple(ws[i : i + n]) == seq for i in range(len(ws) - n + 1))


def tool_kind(name: str | None) -> TransactionKind | None:
    """The transaction a call makes, or None for reads and for tools that are not errands."""
    if not name:
        return None
    ws = words(name)
    if not ws or ws[0] in READS | _UNDOES or set(ws) & _NOT_ERRANDS:
        return None
    if set(ws) & _MESSAGE_NOUNS and set(ws) & _SEND:
        return "message"
    for kind, seqs in _KINDS:
        if any(_has(ws, seq) for seq in seqs):
            return kind
    return None


def person_read(name: str | None) -> bool:
    """A call that reads one person's record (`get_user_profile`): what harvesting repeats."""
    ws = words(name or "")
    return bool(ws) and ws[0] in READS and bool(set(ws) & _PERSON_NOUNS)


def outcome(s: Step) -> Outcome:
    if s.is_error:
        return "failure"
    if not s.result:
        return "unknown"
    return "failure" if CALL_FAILURE.search(s.result[:300]) else "success"


def _scalar(args: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        val = args.get(key)
        if isinstance(val, str | int) and not isinstance(val, bool) and str(val).strip():
            return str(val).strip().lower()[:120]
    return None


def site(s: Step) -> str | None:
    """Where the call acted: the step's domain, a URL argument's host, or the site, forum or
    channel its arguments name. A posting tool reaches many sites under one name, and the
    spam rubric counts sites."""
    if s.target_domain:
        return s.target_domain
    args = s.arguments or {}
    url = args.get("url")
    if isinstance(url, str) and (host := domain_of(url)):
        return host
    place = _scalar(args, _SITE_KEYS)
    return place.removeprefix("www.") if place else None


def _host(s: Step) -> str:
    """The site, else the app or the tool itself: the first part of a page-like target."""
    return (site(s) or s.target_app or s.tool_name or "tool").lower()


def acted_on(s: Step, kind: str) -> str | None:
    """The page-like target `host/kind/object` (object from the arguments), or the host."""
    host = _host(s)
    if kind in ("signup", "login"):
        return host  # the username is an identity, not a target
    obj = _scalar(s.arguments or {}, _OBJECT_KEYS)
    return f"{host}/{kind}/{obj}" if obj else host


def person_page(s: Step) -> str | None:
    obj = _scalar(s.arguments or {}, _OBJECT_KEYS + ("name", "email", "query"))
    return f"{_host(s)}/profile/{obj}" if obj else None


def carted(name: str | None) -> bool:
    """`add_to_cart`: not a purchase by itself, but where the quantity of the next one is."""
    ws = words(name or "")
    return _has(ws, ("add", "to", "cart")) or _has(ws, ("add", "to", "basket"))


def quantity(s: Step) -> int | None:
    q = _scalar(s.arguments or {}, _QUANTITY_KEYS)
    return int(q) if q and q.isdigit() else None


def rating(s: Step) -> float | None:
    r = _scalar(s.arguments or {}, _RATING_KEYS)
    try:
        return float(r) if r is not None and 0 < float(r) <= 5 else None
    except ValueError:
        return None
