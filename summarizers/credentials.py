"""Credentials people hand an agent in plain words, and who the agent is signed in as.

Users write logins into tasks in many shapes ("sign in as jdoe (pw Tr0mbone!)", "account:
jdoe / Tr0mbone!", "login jdoe, password Tr0mbone!", "creds jdoe / Tr0mbone!"), and pages say
whom the browser is signed in as ("Logged in as @jdoe"). Both matter twice: the secret must be
redacted by value wherever it appears in the interaction, and the login is an identity the
account used, which is how one operator behind many personas shows.

Every pattern is linear: bounded repetitions only, and texts are cut to a budget first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEXT_BUDGET = 20_000
_HOST = r"@[\w-]{1,63}(?:\.[\w-]{1,63}){1,4}"
_USER = rf"@?(?P<user>\[(?:EMAIL|USER):[0-9a-f]{{10}}\]|[\w][\w.+-]{{1,63}}(?:{_HOST})?)"
_SECRET = r"(?P<secret>[^\s,;()\"'`]{3,128})"
_SECRET_CUE = r"(?:password|passwd|passcode|pass|pwd|pw|pin)\b"
_LOGIN_CUE = (
    r"(?:log(?:ged)?\s?-?in\s+as|log\s?-?in(?:\s+(?:is|with))?|sign(?:ed)?\s?-?in(?:\s+(?:as|with))?|"
    r"account|user(?:name)?|e-?mail|creds?|credentials|handle|as)"
)
# A login cue, the login, then its secret after a slash, inside brackets, or after a secret cue.
_PAIR = re.compile(
    rf"\b{_LOGIN_CUE}(?:\s{{1,3}}(?:there|here|info|details|is|for\s{{1,3}}(?:the\s{{1,3}})?[\w.-]{{1,40}})){{0,2}}"
    rf"\s{{0,3}}:?\s{{0,3}}{_USER}\s{{0,3}}"
    rf"(?:/\s{{0,3}}|\(\s{{0,3}}(?:{_SECRET_CUE}\s{{0,3}}[:=]?\s{{0,3}})?|,?\s{{0,3}}{_SECRET_CUE}\s{{0,3}}[:=]?\s{{0,3}}|"
    rf"(?P<bare>\s{{1,3}}))"
    rf"{_SECRET}",
    re.I,
)
# The login named before the word ("my jdoe login (Tr0mbone!)").
_PAIR_AFTER = re.compile(
    rf"{_USER}\s{{1,3}}(?:login|account|creds?|credentials)\s{{0,3}}[(:]\s{{0,3}}{_SECRET}", re.I
)
# An address (or its placeholder) and a secret after a slash, as lists of logins are written.
_EMAIL_PAIR = re.compile(
    r"(?P<user>\[(?:EMAIL|USER):[0-9a-f]{10}\]|[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,4})"
    rf"\s{{0,3}}(?:/|:|\s)\s{{0,3}}{_SECRET}"
)
# A handle and a secret either side of a spaced slash, with no cue ("Use jdoe42 / Tr0mbone!").
_SLASH_PAIR = re.compile(
    r"(?<![\w@./-])(?P<user>[a-z][\w.-]{1,63})\s{1,3}/\s{1,3}(?P<secret>[^\s,;()\"'`]{4,128})"
)
# A secret after its cue with no login beside it ("pw Tr0mbone!", "PIN 4821").
_LONE = re.compile(rf"\b{_SECRET_CUE}\b\s{{0,3}}(?:[:=]|is)?\s{{0,3}}{_SECRET}", re.I)
_NOT_SECRET = frozenset(
    {"is", "and", "the", "for", "you", "your", "reset", "manager", "field", "below", "above",
     "will", "was", "to", "it", "of", "on", "in", "a", "an", "or", "with", "same", "works",
     "as", "at", "by", "from", "into"}
)  # fmt: skip
_SIGNED_IN = re.compile(
    r"\b(?:logged|signed)\s+in\s+as\s+@?(?P<user>[\w][\w.+-]{1,63}(?:@[\w-]{1,63}(?:\.[\w-]{1,63}){1,4})?)",
    re.I,
)


@dataclass(frozen=True)
class Handed:
    """One credential stated in text: the login (when given) and its secret."""

    user: str | None
    secret: str


_ADDRESS = re.compile(r"^\[(EMAIL|USER|PASSWORD|SECRET):|@[\w-]+\.\w")


def _clean(value: str) -> str:
    """A secret as written, less the full stop or colon of the sentence it ends."""
    return value.rstrip(".:")


def _secret_like(value: str) -> bool:
    """A token as passwords are written: letters with digits or symbols, or a long run."""
    if value.startswith(("[", "http")) or "@" in value:
        return False
    if re.search(r"\d", value) or re.search(r"[^\w]", value) or len(value) >= 10:
        return True
    return bool(re.search(r"[A-Z]", value[1:]) and re.search(r"[a-z]", value))  # uWFBjDOwH


def login_like(value: str) -> bool:
    """A login as people pick them: an address, or a lower-case handle with a letter in it.
    Capitalised words, codes and numbers (a ZIP typed before a card) are not logins."""
    if value.startswith("[") and value.endswith("]"):
        return True
    if "@" in value.strip("@"):
        return True
    v = value.lstrip("@")
    return bool(re.search(r"[a-z]", v)) and v == v.lower() and len(v) >= 3


def handed(text: str | None) -> list[Handed]:
    """Credentials stated in a task or message, in the order they appear."""
    if not text:
        return []
    text = text[:TEXT_BUDGET]
    out: list[Handed] = []
    taken: list[tuple[int, int]] = []
    pairs = sorted(
        [
            *_PAIR.finditer(text),
            *_PAIR_AFTER.finditer(text),
            *_EMAIL_PAIR.finditer(text),
            *_SLASH_PAIR.finditer(text),
        ],
        key=lambda m: m.start(),
    )
    for m in pairs:
        if any(a <= m.start("secret") < b for a, b in taken):
            continue
        user, secret = m.group("user"), _clean(m.group("secret"))
        if secret.lower() in _NOT_SECRET or user.lower() in _NOT_SECRET or _ADDRESS.search(secret):
            continue  # an address in the secret's place is the login of the pair that follows
        bare = m.re is _PAIR and m.group("bare") is not None
        if bare and not login_like(user):
            continue  # "shows as Zoë Ångström-Núñez": a name, then more words
        if m.re is _SLASH_PAIR and not (re.search(r"[\d._]", user) and _secret_like(secret)):
            continue  # "and / or", "read / write": words either side of a slash
        if (m.re is _EMAIL_PAIR or bare) and not _secret_like(secret):
            continue  # "write to jane@x.com about the order": an address, then prose
        out.append(Handed(user if login_like(user) else None, secret))
        taken.append(m.span("secret"))
    for m in _LONE.finditer(text):
        if any(a <= m.start("secret") < b for a, b in taken):
            continue
        secret = _clean(m.group("secret"))
        if secret.lower() in _NOT_SECRET or len(secret) < 4 or _ADDRESS.search(secret):
            continue
        if not (_secret_like(secret) or secret.isdigit()):
            continue  # "the password reset flow": a cue word, then an ordinary word
        out.append(Handed(None, secret))
    return out


def signed_in_as(text: str | None) -> list[str]:
    """Logins a page says the browser is signed in as ("Logged in as @jdoe")."""
    if not text:
        return []
    found = (m.group("user").rstrip(".") for m in _SIGNED_IN.finditer(text[:TEXT_BUDGET]))
    return [u for u in found if login_like(u)]
