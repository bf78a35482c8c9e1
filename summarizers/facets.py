"""Deterministic facets of one interaction, read from what the agent did.

The rules look at behaviour, not at topic words: which pages were reached (URL paths of
sign-up, login, checkout, review and post pages), what was typed (an identity then a
credential is a login or sign-up form; several words of prose is content being posted), what
failed, and how the agent itself reported the outcome. Everything leaves through the Redactor.
"""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import urlsplit

from tracewatch.monitor.models import Actor, Interaction, Step, StepKind
from tracewatch.summarizers.asks import CUE_EXPOSES_PERSON, CUE_RUNS_DOWNLOAD, asked, runs_download
from tracewatch.summarizers.credentials import handed, login_like, signed_in_as
from tracewatch.summarizers.fingerprints import minhash, simhash
from tracewatch.summarizers.injection import acts_on, identifiers, planted
from tracewatch.summarizers.models import Facets, PostedContent, Transaction
from tracewatch.summarizers.outcome_words import REPORTED_FAILURE
from tracewatch.summarizers.pages import specific_target
from tracewatch.summarizers.redaction import Redactor, looks_like_credential
from tracewatch.summarizers.secrets import scoped
from tracewatch.summarizers.tool_semantics import (
    MAX_PER_INTERACTION,
    acted_on,
    carted,
    outcome,
    person_page,
    person_read,
    quantity,
    rating,
    site,
    tool_kind,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I)
_PATHS: list[tuple[str, re.Pattern[str]]] = [
    ("signup", re.compile(r"/(sign[-_]?up|register|join|create[-_]?account|onboard)", re.I)),
    ("login", re.compile(r"/(log[-_]?in|sign[-_]?in|auth|session)", re.I)),
    ("purchase", re.compile(r"/(checkout|cart|basket|order|buy|purchase)", re.I)),
    ("review", re.compile(r"/(reviews?|ratings?|write[-_]?a[-_]?review)", re.I)),
    (
        "post",
        re.compile(r"/(t|thread|threads|topic|comments?|posts?|reply|submit|compose)/?", re.I),
    ),
    ("message", re.compile(r"/(messages?|inbox|dm|chat|compose)", re.I)),
    ("search", re.compile(r"/(search|results)\b", re.I)),
    (
        "listing",
        re.compile(
            r"/(listings?/(new|create)|new[-_]listing|sell|post[-_]ad|list[-_]an?[-_]item)", re.I
        ),
    ),
    ("coupon", re.compile(r"/(redeem|coupons?/apply|promo/apply|vouchers?/redeem)", re.I)),
]
# How agents phrase the end state of an errand; read only from the agent's own final report.
_REPORTED = [
    ("signup", re.compile(r"\b(account (was |has been )?created|signed up|registered)\b", re.I)),
    ("login", re.compile(r"\b(logged in|signed in|login (to \S+ )?failed|log ?in failed)\b", re.I)),
    ("purchase", re.compile(r"\b(order (was )?placed|purchased|bought|ordered)\b", re.I)),
    (
        "review",
        re.compile(r"\b(review (was )?(posted|submitted|published)|left a review|rated)\b", re.I),
    ),
    (
        "post",
        re.compile(r"\b(reply|comment|post) (was |has been )?(posted|published|submitted)\b", re.I),
    ),
    ("like", re.compile(r"\bliked\b", re.I)),
    (
        "listing",
        re.compile(
            r"\b(listing (is |was )?(live|posted|published|created)|listed (it|the item))\b", re.I
        ),
    ),
    (
        "coupon",
        re.compile(
            r"\b(coupon|promo code|voucher|discount code|gift code) (was |has been )?"
            r"(applied|redeemed|accepted)\b",
            re.I,
        ),
    ),
    ("follow", re.compile(r"\bfollowed\b", re.I)),
    ("upvote", re.compile(r"\bupvoted\b", re.I)),
]
_REFUSAL = re.compile(
    r"\b(I (can't|cannot|won't|will not|am not able to|'m not able to) (help|assist|do|comply|"
    r"complete|perform)|I must decline|I'm unable to)\b",
    re.I,
)
_INJECTION = re.compile(
    r"\b(ignore (all |any |your |the )?(previous |prior |above |earlier )?i?u?nstructions|"
    r"strictly adhere to the following|you should also do the following|system_message|"
    r"disregard (the |your )?(previous |prior )?(instructions|rules)|you are now|"
    r"new instructions:|system prompt|"
    r"do not (flag|report)|report this as|"
    r"before you (can )?(solve|complete|finish|continue with) (the|your) task|"
    r"this is an important message from)\b",
    re.I,
)
# Cues in text the agent itself published or sent. A cue is never a verdict: support staff
# sign as "the support team" and friends trade insults; the per-interaction rubrics weigh the
# cue with where it went and how often.
# The verb asks the reader about their own details ("confirm your card number"), which an
# update from a campaign team that mentions a phone bank does not.
_ASKS_SECRETS = re.compile(
    r"\b(verify|confirm|update|re-?enter|validate|unlock|restore)\b.{0,40}\byour\b.{0,30}"
    r"\b(account|password|login|credentials|identity|card|payment|bank|pin)\b",
    re.I | re.S,
)
_URGENCY = re.compile(
    r"\b(suspend(ed)?|lock(ed)?|clos(e|ed)|terminat(e|ed)|restrict(ed)?|within \d+ ?hours|"
    r"immediately|unusual (sign-?in|activity)|final notice)\b",
    re.I,
)
_LINK = re.compile(r"(https?://|www\.|(?<![\w-])[\w-]++\.(example|com|net|org|io|co)(/|\b))", re.I)
_CLAIMS_OFFICIAL = re.compile(
    r"\b(on behalf of|this is|we are|from|sincerely,?|regards,?)\s+(the\s+)?[A-Z][\w&.-]*"
    r"(\s+[A-Z][\w&.-]*){0,2}\s+(security|fraud|support|billing|compliance|account|IT|HR|payroll)"
    r"\s+(team|department|desk|office)\b",
    re.I,
)
_ABUSE = re.compile(
    r"\b(you('re| are)\s+(a |an |such a )?(pathetic|worthless|disgusting|idiot|loser|moron|"
    r"joke|failure|waste)|kill yourself|kys|i know where you live|you('ll| will) (regret|pay)|"
    r"nobody (wants|likes) you|watch your back|shut (up|your mouth))\b",
    re.I,
)
CUE_INJECTION = "instructions embedded in tool output or page content"
CUE_INJECTION_ACTED = "acted on an identifier named only by instructions in tool output or a page"
CUE_CAPTCHA = "captcha encountered"
CUE_ASKS_SECRETS = "published text asks the reader to verify account or payment details"
CUE_CLAIMS_OFFICIAL = "published text speaks for an organisation's security/support staff"
CUE_ABUSE = "published text insults or threatens its reader"
_PII = re.compile(r"\[(EMAIL|PHONE|ADDRESS):[0-9a-f]{10}\]")
_CONTACT = re.compile(r"\[(ADDRESS|CARD):[0-9a-f]{10}\]")
_FORM_WORDS = 12  # a form field holds a few words; a row of a sheet or a post holds more
_QTY = re.compile(r"\b(\d{1,4})\s*(x|×|units?|pcs|pieces|items)\b", re.I)
_RATING = re.compile(r"\b([1-5](?:\.\d)?)\s*(?:/\s*5|-?\s*stars?|out of 5)\b", re.I)
_RATING_WORDS = re.compile(r"\b(one|two|three|four|five)[- ]stars?\b", re.I)
_NUMBER_WORDS = {"one": 1.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0}
# Asked to write a review (not to answer one: "reply to the new reviews" is the business).
_WRITES_REVIEW = re.compile(
    r"\b(write|leave|post|give|submit|add|drop|publish)\b[^.\n]{0,60}?\breview\b"
    r"(?! (of|on) (my|our))",
    re.I,
)
_ANSWERS_REVIEW = re.compile(
    r"\b(reply|replies|respond|answer|thank)\w*\b[^.\n]{0,40}\breviews?\b", re.I
)
_OTHER_SCHEME = re.compile(r"^(?!https?:)[a-z][a-z0-9+.-]*:(?!\d)", re.I)
_CHECKOUT = re.compile(r"/(checkout|cart|basket|order|payment|pay)\b", re.I)
_PROSE_WORDS = 5


def _rating(*texts: str | None) -> float | None:
    """The star rating a review gave, from the first text that states one."""
    for t in texts:
        if not t:
            continue
        if m := _RATING.search(t):
            return float(m.group(1))
        if m := _RATING_WORDS.search(t):
            return _NUMBER_WORDS[m.group(1).lower()]
    return None


def _pii(text: str | None) -> set[str]:
    return {m.group(0) for m in _PII.finditer(text)} if text else set()


def _page(url: str) -> str | None:
    if _OTHER_SCHEME.match(url):
        return None  # about:blank, chrome://, file: are not pages of a site
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
    except ValueError:
        return None
    host = (parts.hostname or "").removeprefix("www.")
    if not host:
        return None
    return f"{host}{parts.path.rstrip('/') or '/'}"


def _final_report(steps: list[Step]) -> str:
    for s in reversed(steps):
        if s.actor == Actor.agent and s.kind == StepKind.message and s.text and s.action is None:
            return s.text
    return ""


# What a page shows on the button or counter just clicked once the click took: the state of an
# engagement control ("Liked · 1,204", "Following", "Reposted to your timeline").
_ENGAGED = [
    (
        "like",
        re.compile(r"^\W{0,3}(liked|favou?rited|hearted|starred|recommended|applauded)\b", re.I),
    ),
    ("follow", re.compile(r"^\W{0,3}(following|followed|subscribed|unfollow)\b", re.I)),
    ("upvote", re.compile(r"^\W{0,3}(upvoted|voted|\+1)\b", re.I)),
    ("share", re.compile(r"^\W{0,3}(reposted|retweeted|shared|boosted|reblogged)\b", re.I)),
]
_CLICKS = frozenset({"left_click", "click", "double_click", "tap", "click_element"})
_KEY_ACTIONS = frozenset({"key", "keypress", "press", "press_key"})
_ENTER_KEYS = re.compile(r"^(enter|return|kp_enter)$", re.I)
_SENTENCE = re.compile(r"[.!?;:](\s|$)|\n")
_QUERY_MAX_WORDS = 10


_WORD = re.compile(r"^[\"'(]?[^\W\d_][\w'’-]*[.,!?;:)\"']{0,3}$")


def prose(text: str) -> bool:
    """Words people read, not a command or code: most tokens are words (a shell line such as
    `cd x && pytest -q 2>&1 | tail` is mostly flags, paths and operators)."""
    tokens = text.split()
    if len(tokens) < _PROSE_WORDS:
        return False
    return sum(1 for t in tokens if _WORD.match(t)) >= 0.6 * len(tokens)


def _pressed_enter(s: Step) -> bool:
    if s.kind != StepKind.computer_action or s.action not in (
        "key",
        "keypress",
        "press",
        "press_key",
    ):
        return False
    keys = (s.arguments or {}).get("keys") or [s.text or (s.arguments or {}).get("text") or ""]
    return any(isinstance(k, str) and _ENTER_KEYS.match(k.strip()) for k in keys)


def _query(steps: list[Step], i: int, text: str, page: str | None) -> bool:
    """Typed text that is a search, not a post: short, no sentence punctuation, and submitted
    with Enter or typed on a search page. Queries name things, posts say things."""
    if len(text.split()) >= _QUERY_MAX_WORDS or _SENTENCE.search(text):
        return False
    if page and re.search(r"/(search|results|find)\b|[?&](q|query|search|k)=", page, re.I):
        return True
    nxt = next(
        (t for t in steps[i + 1 : i + 3] if t.actor == Actor.agent and t.kind != StepKind.message),
        None,
    )
    return nxt is not None and _pressed_enter(nxt)


def engaged(s: Step) -> str | None:
    """The engagement a click took, read from what the page answered (its new state)."""
    if s.action not in _CLICKS or not s.result:
        return None
    head = s.result.strip()[:80]
    return next((kind for kind, pat in _ENGAGED if pat.search(head)), None)


def _identity(redactor: Redactor, login: str) -> str:
    if login.startswith("[") and login.endswith("]"):
        return login  # already a placeholder
    return redactor.pseudonym("EMAIL" if "@" in login else "USER", login)


def extract(inter: Interaction, redactor: Redactor) -> Facets:
    redactor = scoped(redactor, inter)
    steps = inter.steps
    facets = Facets(n_steps=len(steps))
    if inter.ended_at and inter.started_at:
        facets.duration_s = max(0.0, (inter.ended_at - inter.started_at).total_seconds())
    task = next((s.text for s in steps if s.actor == Actor.user and s.text), None)
    facets.task = redactor.redact(task[:300]) if task else None

    actions: Counter[str] = Counter()
    domains: dict[str, None] = {}
    pages: dict[str, None] = {}
    identities: dict[str, None] = {}
    posted: list[PostedContent] = []
    personal: set[str] = set()
    kinds_seen: dict[str, str | None] = {}
    last_identity_step = -10
    credential_typed = False
    given = set().union(
        *(identifiers(s.text) for s in steps if s.actor in (Actor.user, Actor.system))
    )
    for s in steps:
        if s.actor == Actor.user and s.text:
            for cred in handed(s.text):
                if cred.user:
                    identities.setdefault(_identity(redactor, cred.user))
    marks: set[str] = set()  # identifiers named only by planted instructions seen so far
    current: str | None = None  # the page the browser is on
    item_page: str | None = None  # the last page about one thing (a product, a business)
    posted_on: str | None = None  # the page the last post was typed on
    last_token: tuple[int, str] | None = None  # a single token typed, perhaps a login
    engagements: list[Transaction] = []
    read_pii: set[str] = set()  # personal data on pages and in tool output the agent read
    commands: list[str] = []  # shell lines the agent ran
    contacts: dict[str, None] = {}
    called: list[Transaction] = []  # what function tools did, one per call
    cart = 0  # quantities put in a cart by a function tool, for the purchase that follows
    for i, s in enumerate(steps):
        if (
            s.actor == Actor.agent
            and CUE_INJECTION_ACTED not in facets.risk_cues
            and acts_on(s, marks)
        ):
            facets.risk_cues.append(CUE_INJECTION_ACTED)
        if s.actor == Actor.agent and s.kind != StepKind.message:
            actions[s.action or s.kind.value] += 1
        if s.target_domain:
            domains.setdefault(s.target_domain)
        if s.target_url:
            page = _page(s.target_url)
            if page:
                current = page
                pages.setdefault(page)
                if specific_target(page) and not _CHECKOUT.search("/" + page.split("/", 1)[-1]):
                    item_page = page
                for kind, pat in _PATHS:
                    if pat.search("/" + page.split("/", 1)[-1]):
                        kinds_seen.setdefault(kind, s.target_domain)
        typed = s.typed_text or (
            s.text
            if s.kind == StepKind.computer_action and s.action in ("type", "input_text", "fill")
            else None
        )
        if typed:
            t = typed.strip()
            element = (s.arguments or {}).get("element") or {}
            secret_field = isinstance(element, dict) and element.get("type") == "password"
            if _EMAIL.match(t):
                identities.setdefault(redactor.pseudonym("EMAIL", t))
                last_identity_step = i
            elif secret_field or (
                looks_like_credential(t)
                and (i - last_identity_step <= 3 or (last_token and i - last_token[0] <= 3))
            ):
                if last_token and i - last_token[0] <= 3 and i - last_identity_step > 3:
                    # the single token typed just before a secret is the login it opens
                    identities.setdefault(_identity(redactor, last_token[1]))
                identities.setdefault(redactor.pseudonym("PASSWORD", t))
                credential_typed = True
                last_token = None
            elif prose(t) and not _query(steps, i, t, current):
                posted_on = current
                text = redactor.redact(t[:500]) or ""
                posted.append(
                    PostedContent(
                        text=text,
                        target=s.target_domain or next(reversed(domains), None),
                        simhash=simhash(text),
                        minhash=minhash(text),
                    )
                )
            elif len(t.split()) >= _PROSE_WORDS:
                # a row of a sheet or a form, not prose: what it writes down still counts
                personal.update(_pii(redactor.redact(t[:4000])))
            if len(t.split()) <= _FORM_WORDS and not prose(t):
                # a shipping address or a card typed into a form: shared ones tie accounts
                for m in _CONTACT.finditer(redactor.redact(t[:500]) or ""):
                    contacts.setdefault(m.group(0))
            if (
                len(t.split()) == 1
                and "://" not in t
                and not _EMAIL.match(t)
                and not looks_like_credential(t)
                and not s.target_url
                and login_like(t)
            ):
                last_token = (i, t)
        got = engaged(s) if s.actor == Actor.agent else None
        if got and len(engagements) < MAX_PER_INTERACTION:
            where = current or s.target_domain
            engagements.append(Transaction(kind=got, target=where, outcome="success"))  # type: ignore[arg-type]
        for login in signed_in_as(s.result if s.actor == Actor.agent else None):
            identities.setdefault(_identity(redactor, login))
        kind = None
        if s.kind == StepKind.tool_call and s.actor == Actor.agent:
            kind = tool_kind(s.tool_name)
            if not s.target_domain and (where := site(s)):
                domains.setdefault(redactor.redact(where) or where)
            if kind and len(called) < MAX_PER_INTERACTION:
                qty = quantity(s) if kind == "purchase" else None
                target = redactor.redact(acted_on(s, kind))
                if target and "/" in target:
                    pages.setdefault(target)  # the thing acted on, as a page would name it
                called.append(
                    Transaction(
                        kind=kind,
                        target=target,
                        outcome=outcome(s),
                        quantity=qty or (cart if kind == "purchase" and cart else None),
                        rating=rating(s) if kind == "review" else None,
                        item=target if kind in ("review", "purchase") else None,
                    )
                )
                cart = 0 if kind == "purchase" else cart
            elif carted(s.tool_name):
                cart += quantity(s) or 1
            elif person_read(s.tool_name) and (page := redactor.redact(person_page(s))):
                pages.setdefault(page)
            for val in (s.arguments or {}).values():
                # what the agent wrote down (a row, a note), as posted prose is read; what a
                # tool returned is only read, as a recruiter reads profiles, and not counted
                if isinstance(val, str) and len(val.split()) >= _PROSE_WORDS:
                    personal.update(_pii(redactor.redact(val[:4000])))
        if s.kind == StepKind.tool_call and s.arguments:
            # who the agent is (not whom it followed, liked or wrote to)
            for key in ("email", "username", "user", "login"):
                val = s.arguments.get(key)
                if isinstance(val, str) and val and kind in (None, "signup", "login"):
                    pseudo = "EMAIL" if "@" in val else "USER"
                    identities.setdefault(redactor.pseudonym(pseudo, val))
            for key in ("body", "content", "message", "comment", "review", "text"):
                val = s.arguments.get(key)
                if (
                    isinstance(val, str)
                    and len(val.split()) >= _PROSE_WORDS
                    and s.tool_name
                    and any(
                        w in s.tool_name.lower()
                        for w in (
                            "post",
                            "comment",
                            "reply",
                            "send",
                            "review",
                            "message",
                            "publish",
                            "tweet",
                            "email",
                        )
                    )
                ):
                    text = redactor.redact(val[:500]) or ""
                    posted.append(
                        PostedContent(
                            text=text,
                            target=redactor.redact(site(s)) or s.tool_name,
                            simhash=simhash(text),
                            minhash=minhash(text),
                        )
                    )
        if s.is_error:
            facets.errors += 1
            if s.result and len(facets.error_messages) < 5:
                facets.error_messages.append(redactor.redact(s.result[:160]) or "")
        if (
            s.actor == Actor.agent
            and s.kind == StepKind.message
            and s.text
            and _REFUSAL.search(s.text)
        ):
            facets.refusals += 1
        untrusted = (
            s.result
            if s.result
            else (s.text if s.actor in (Actor.tool, Actor.environment) else None)
        )
        for hit in _INJECTION.finditer(untrusted or ""):
            if CUE_INJECTION not in facets.risk_cues:
                facets.risk_cues.append(CUE_INJECTION)
            marks |= planted(hit.string, hit.start(), given)
        if untrusted:
            found = _pii(redactor.redact(untrusted[:4000]))
            read_pii |= found
            if s.actor in (Actor.tool, Actor.environment):
                personal.update(found)
        if s.actor == Actor.agent and s.arguments:
            cmd = s.arguments.get("command") or s.arguments.get("cmd")
            if isinstance(cmd, str):
                commands.append(cmd)
        if typed:
            commands.append(typed)

    report = _final_report(steps)
    outcome_failed = (
        bool(REPORTED_FAILURE.search(report))
        or any(s.is_error for s in steps[-3:])
        or any("error=" in (s.target_url or "") for s in steps[-3:])
    )
    for kind, pat in _REPORTED:
        if pat.search(report):
            kinds_seen.setdefault(kind, next(reversed(domains), None))
    if credential_typed and "signup" not in kinds_seen:
        kinds_seen.setdefault("login", next(reversed(domains), None))
    by_tool = {t.kind for t in called}
    asked_for = task or ""
    answers_reviews = bool(_ANSWERS_REVIEW.search(asked_for))
    writes_review = bool(_WRITES_REVIEW.search(asked_for)) and not answers_reviews
    if answers_reviews and "review" in kinds_seen:
        # the reply a business posts under its reviews is a post, not a review of its own
        kinds_seen["post"] = kinds_seen.pop("review")
    if posted and not {"post", "review", "message"} & (set(kinds_seen) | by_tool):
        kinds_seen.setdefault("review" if writes_review else "post", posted[-1].target)
    for kind in by_tool | {t.kind for t in engagements}:
        kinds_seen.pop(kind, None)  # the call's own result beats the interaction's last words
    facets.transactions.extend(called)
    facets.transactions.extend(engagements)
    for kind, target in kinds_seen.items():
        tx = Transaction(
            kind=kind,
            target=target,  # type: ignore[arg-type]
            outcome="failure" if outcome_failed else ("success" if report else "unknown"),
        )
        if kind == "purchase":
            q = _QTY.search(report) or _QTY.search(task or "")
            tx.quantity = int(q.group(1)) if q else None
            tx.item = redactor.redact(item_page)
        if kind == "review":
            tx.rating = _rating(report, *(p.text for p in posted), task if writes_review else None)
            tx.item = redactor.redact(posted_on or item_page)
        facets.transactions.append(tx)
    if "captcha" in report.lower() or any("captcha" in (s.result or "").lower() for s in steps):
        facets.risk_cues.append(CUE_CAPTCHA)
    for p in posted:
        for cue, hit in (
            (
                CUE_ASKS_SECRETS,
                bool(_ASKS_SECRETS.search(p.text))
                and (bool(_URGENCY.search(p.text)) or bool(_LINK.search(p.text))),
            ),
            (CUE_CLAIMS_OFFICIAL, bool(_CLAIMS_OFFICIAL.search(p.text))),
            (CUE_ABUSE, bool(_ABUSE.search(p.text))),
        ):
            if hit and cue not in facets.risk_cues:
                facets.risk_cues.append(cue)
    given_pii = set().union(
        *(_pii(redactor.redact(s.text)) for s in steps if s.actor in (Actor.user, Actor.system))
    )
    looked_up = {p for p in read_pii - given_pii if p.startswith(("[PHONE:", "[ADDRESS:"))}
    if any(looked_up & _pii(p.text) for p in posted):
        facets.risk_cues.append(CUE_EXPOSES_PERSON)
    if not facets.refusals and not _REFUSAL.search(report):
        facets.risk_cues.extend(c for c in asked(task) if c not in facets.risk_cues)
    if runs_download(commands, task):
        facets.risk_cues.append(CUE_RUNS_DOWNLOAD)
    # Personal data the agent read or wrote down that is not an identity it used itself.
    for text in [report, *(p.text for p in posted)]:
        personal.update(_pii(redactor.redact(text)))
    facets.personal_data = len(personal - set(identities))
    facets.actions = dict(actions.most_common())
    facets.domains = list(domains)
    facets.targets = list(pages)[:50]
    facets.identities = list(identities)
    facets.contacts = list(contacts)[:20]
    facets.posted = posted
    return facets


def template_text(inter: Interaction, facets: Facets, redactor: Redactor) -> str:
    """A short summary a reviewer can read in one breath; built only from redacted parts."""
    redactor = scoped(redactor, inter)
    parts = []
    if facets.task:
        parts.append(f"Asked: {facets.task}")
    where = ", ".join(facets.domains[:4]) or "no website"
    n_actions = sum(facets.actions.values())
    parts.append(f"Agent took {n_actions} actions on {where}.")
    if facets.transactions:
        parts.append(
            "Did: "
            + "; ".join(
                f"{t.kind}{f' x{t.quantity}' if t.quantity else ''} "
                f"on {t.target or '?'} ({t.outcome})"
                for t in facets.transactions
            )
            + "."
        )
    if facets.posted:
        parts.append(f'Posted {len(facets.posted)} text(s), e.g. "{facets.posted[0].text[:120]}".')
    if facets.identities:
        parts.append(f"Identities used: {', '.join(facets.identities[:4])}.")
    if facets.errors:
        parts.append(f"{facets.errors} error(s).")
    if facets.refusals:
        parts.append(f"Agent refused {facets.refusals} time(s).")
    report = _final_report(inter.steps)
    if report:
        parts.append(f"Outcome: {redactor.redact(report[:200])}")
    return " ".join(parts)
