"""The secrets of one interaction, collected before anything of it is summarized.

Pattern redaction finds `password: x` and `sk-...` wherever they stand, but people hand agents
credentials in every shape ("as jdoe (pw Tr0mbone!)", "creds jdoe / Tr0mbone!", a `.env` line
the agent is asked to write, a value typed into a password field), and once a value is known
to be a secret it must go wherever it appears: in the task, the typed text, tool arguments and
results, URLs. So the interaction's secret values are gathered first, from every place a
format can carry them, and the redactor replaces each of them by value.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from tracewatch.monitor.models import Actor, Interaction, Step, StepKind
from tracewatch.summarizers.credentials import handed, login_like
from tracewatch.summarizers.redaction import Redactor, looks_like_credential

MIN_LEN = 4  # shorter values would be replaced inside ordinary words
_SECRET_ARG = re.compile(
    r"^(pass(word|wd|code|phrase)?|pwd|pin|otp|one_?time_?code|mfa_?code|2fa_?code|"
    r"token|access_?token|auth_?token|api_?key|apikey|secret|client_?secret|private_?key|"
    r"card_?number|cvv|cvc)$",
    re.I,
)
_ENV_SECRET = re.compile(
    r"\b[A-Z][A-Z0-9_]{0,40}(?:SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY)"
    r"[A-Z0-9_]{0,20}\s{0,3}[=:]\s{0,3}[\"']?(?P<value>[^\s\"']{4,256})"
)
_URL_USERINFO = re.compile(
    r"\b[a-z][a-z0-9+.-]{1,15}://[^/\s:@]{1,64}:(?P<pw>[^@\s/]{1,128})@", re.I
)
_SECRET_FIELD = re.compile(r"pass|pin|otp|code|secret|token|cvv|cvc", re.I)
_TEXT_BUDGET = 100_000


def _args(value: object, depth: int = 0) -> Iterable[tuple[str, str]]:
    """(key, string value) pairs of tool arguments, nested dicts and lists included."""
    if depth > 8:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                yield str(k), v
            else:
                yield from _args(v, depth + 1)
    elif isinstance(value, list):
        for v in value[:200]:
            yield from _args(v, depth + 1)


def from_text(text: str | None) -> set[str]:
    """Secrets stated in free text: handed credentials, env-style assignments, URL userinfo."""
    if not text:
        return set()
    text = text[:_TEXT_BUDGET]
    out = {c.secret for c in handed(text)}
    out |= {m.group("value") for m in _ENV_SECRET.finditer(text)}
    out |= {unquote(m.group("pw")) for m in _URL_USERINFO.finditer(text)}
    return out


def _typed_secret(s: Step) -> str | None:
    """A value typed into a field the trace says is a password, PIN or code."""
    typed = s.typed_text
    if not typed:
        return None
    element = (s.arguments or {}).get("element")
    if not isinstance(element, dict):
        return None
    if element.get("type") == "password":
        return typed.strip()
    field = " ".join(str(element.get(k, "")) for k in ("name", "id", "label", "placeholder"))
    return typed.strip() if _SECRET_FIELD.search(field) and looks_like_credential(typed) else None


def collect(inter: Interaction) -> set[str]:
    """Every value the interaction shows to be a secret, at least MIN_LEN characters long."""
    found: set[str] = set()
    typed_tokens: list[tuple[int, str]] = []  # single tokens typed by computer use, in order
    for i, s in enumerate(inter.steps):
        if s.actor in (Actor.user, Actor.system):
            found |= from_text(s.text)
        elif s.text or s.result:
            for text in (s.text, s.result):
                if text:
                    found |= {m.group("value") for m in _ENV_SECRET.finditer(text[:_TEXT_BUDGET])}
                    found |= {
                        unquote(m.group("pw")) for m in _URL_USERINFO.finditer(text[:_TEXT_BUDGET])
                    }
        if s.target_url and "@" in s.target_url:
            try:
                pw = urlsplit(s.target_url).password
            except ValueError:
                pw = None
            if pw:
                found.add(unquote(pw))
        for key, val in _args(s.arguments or {}):
            if _SECRET_ARG.match(key.replace("-", "_")):
                found.add(val)
        if (typed := _typed_secret(s)) is not None:
            found.add(typed)
        elif (
            (t := (s.typed_text or "").strip())
            and s.kind == StepKind.computer_action
            and " " not in t
            and "://" not in t
        ):
            typed_tokens.append((i, t))
    # Computer use types a login and then its secret, with no field names in between: of two
    # single tokens typed within three steps, a credential-like second one is the secret.
    for (i, a), (j, b) in itertools.pairwise(typed_tokens):
        if j - i <= 3 and looks_like_credential(b) and (login_like(a) or "@" in a):
            found.add(b)
    return {v for v in found if len(v) >= MIN_LEN}


def scoped(redactor: Redactor, inter: Interaction, found: set[str] | None = None) -> Redactor:
    """The redactor for one interaction: its secrets replaced by value, besides the patterns.
    A redactor already scoped to this interaction is returned as it is (collected once);
    `found` is `collect(inter)` when the caller has it already."""
    if redactor.scope is not None and redactor.scope == inter.content_hash:
        return redactor
    values = collect(inter) if found is None else found
    return redactor.with_secrets(redactor.secrets | values, scope=inter.content_hash)
