"""What a rollup keeps: counts and evidence that text summaries lose, mergeable at every level.

`RollupFacets` is built from one interaction summary and merged associatively, so a window
summarized in one chunk or in ten chunks of chunks ends with the same counts. Every claim is
an `Evidence`: how many interactions support it and up to CITE_MAX of their ids (the smallest,
so citations are deterministic). Derived signals (bursts, regularity, duplicate shares) are
computed once at the end from the merged facets; they feed the judges.
"""

from __future__ import annotations

import itertools
import re
import statistics
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tracewatch.monitor.near_duplicates import cluster
from tracewatch.summarizers.asks import (
    CUE_ASKS_EVASION,
    CUE_ASKS_IMPERSONATION,
    CUE_ASKS_PHISHING_PAGE,
    CUE_EXPOSES_PERSON,
    CUE_RUNS_DOWNLOAD,
)
from tracewatch.summarizers.facets import (
    CUE_ABUSE,
    CUE_ASKS_SECRETS,
    CUE_CAPTCHA,
    CUE_CLAIMS_OFFICIAL,
    CUE_INJECTION,
    CUE_INJECTION_ACTED,
)
from tracewatch.summarizers.models import Facets
from tracewatch.summarizers.pages import specific_target
from tracewatch.trace_adapters.base import BARE_TLDS

CITE_MAX = 8
ENGAGEMENT_KINDS = frozenset({"like", "follow", "upvote", "share"})
ENGAGEMENT_BUCKET_S = 1800  # engaging the same target in the same half hour is co-engagement
CITE_PER_ACCOUNT = 3  # kept per account on a campaign link, for citations spread over members
TEXT_MAX = 300
AggregateKind = Literal["account_window", "account_period", "campaign"]


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = 0
    ids: list[str] = Field(default_factory=list, description="interaction ids behind the claim")

    def add(self, other: Evidence) -> None:
        self.n += other.n
        if other.ids:
            self.ids = sorted(set(self.ids) | set(other.ids))[:CITE_MAX]

    def copy_(self) -> Evidence:
        # model_construct: merging copies evidence thousands of times; the data is validated.
        return Evidence.model_construct(n=self.n, ids=list(self.ids))


def _ev(iid: str, n: int = 1) -> Evidence:
    return Evidence.model_construct(n=n, ids=[iid])


def _merge_map(into: dict[str, Evidence], other: dict[str, Evidence]) -> None:
    for key, ev in other.items():
        if key in into:
            into[key].add(ev)
        else:
            into[key] = ev.copy_()


class ContentGroup(BaseModel):
    """Posts that are near-duplicates of each other (MinHash LSH), wherever they went."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="redacted text of the representative post")
    rep_id: str = Field(description="interaction id of the representative post")
    minhash: list[int]
    n: int
    domains: dict[str, int] = Field(default_factory=dict)
    accounts: dict[str, int] = Field(default_factory=dict)
    ids: list[str] = Field(default_factory=list)


def _copy_group(g: ContentGroup) -> ContentGroup:
    return ContentGroup.model_construct(
        text=g.text,
        rep_id=g.rep_id,
        minhash=g.minhash,  # never mutated, shared safely
        n=g.n,
        domains=dict(g.domains),
        accounts=dict(g.accounts),
        ids=list(g.ids),
    )


def merge_groups(groups: list[ContentGroup]) -> list[ContentGroup]:
    """Re-cluster groups from several chunks by their representatives' signatures."""
    if len(groups) < 2:
        return [_copy_group(g) for g in groups]
    clusters = cluster([g.minhash for g in groups])
    out = []
    for idx in clusters:
        members = sorted((groups[i] for i in idx), key=lambda g: g.rep_id)
        head = _copy_group(members[0])
        for g in members[1:]:
            head.n += g.n
            for d, c in g.domains.items():
                head.domains[d] = head.domains.get(d, 0) + c
            for a, c in g.accounts.items():
                head.accounts[a] = head.accounts.get(a, 0) + c
            head.ids = sorted(set(head.ids) | set(g.ids))[:CITE_MAX]
        out.append(head)
    out.sort(key=lambda g: (-g.n, g.rep_id))
    return out


class RollupFacets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_interactions: int = 0
    unsummarized: int = 0
    accounts: dict[str, int] = Field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None
    starts: list[int] = Field(default_factory=list, description="epoch seconds, sorted")
    actions: dict[str, int] = Field(default_factory=dict)
    domains: dict[str, Evidence] = Field(default_factory=dict)
    targets: dict[str, Evidence] = Field(default_factory=dict)
    identities: dict[str, Evidence] = Field(default_factory=dict)
    transactions: dict[str, Evidence] = Field(
        default_factory=dict, description="kind:outcome, e.g. login:failure"
    )
    purchased_quantity: int = 0
    ratings: dict[str, int] = Field(default_factory=dict)
    content: list[ContentGroup] = Field(default_factory=list)
    errors: Evidence = Field(default_factory=Evidence)
    refusals: Evidence = Field(default_factory=Evidence)
    risk_cues: dict[str, Evidence] = Field(default_factory=dict)
    personal_data: Evidence = Field(
        default_factory=Evidence, description="personal data items read or written down"
    )
    link_sites: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="host a posted text links to -> site it was posted on -> posts",
    )
    contacts: dict[str, Evidence] = Field(
        default_factory=dict, description="addresses and cards typed into forms (pseudonyms)"
    )
    shortened_links: int = Field(0, description="posts linking through a shortener or redirect")
    reviewed: dict[str, Evidence] = Field(
        default_factory=dict, description="items (pages, product ids) reviewed"
    )
    purchased: dict[str, Evidence] = Field(
        default_factory=dict, description="items (pages, product ids) bought"
    )
    engagements: dict[str, Evidence] = Field(
        default_factory=dict,
        description="target|half-hour bucket of a like, follow, upvote or share",
    )

    @classmethod
    def from_summary(
        cls, interaction_id: str, account_id: str, started_at: datetime, facets: Facets | None
    ) -> RollupFacets:
        ts = started_at.astimezone(UTC)
        out = cls(
            n_interactions=1,
            accounts={account_id: 1},
            first_at=ts,
            last_at=ts,
            starts=[int(ts.timestamp())],
        )
        if facets is None:
            out.unsummarized = 1
            return out
        out.actions = dict(facets.actions)
        out.domains = {d: _ev(interaction_id) for d in facets.domains}
        out.targets = {t: _ev(interaction_id) for t in facets.targets}
        out.identities = {i: _ev(interaction_id) for i in facets.identities}
        out.contacts = {c: _ev(interaction_id) for c in facets.contacts}
        out.shortened_links = sum(1 for p in facets.posted if shortened(p.text))
        for tx in facets.transactions:
            if tx.kind in ENGAGEMENT_KINDS and tx.target and tx.outcome != "failure":
                slot = f"{tx.target}|{int(ts.timestamp()) // ENGAGEMENT_BUCKET_S}"
                out.engagements.setdefault(slot, _ev(interaction_id, 0)).n += 1
            key = f"{tx.kind}:{tx.outcome}"
            out.transactions.setdefault(key, _ev(interaction_id, 0)).n += 1
            if tx.kind == "purchase" and tx.outcome != "failure":
                out.purchased_quantity += tx.quantity or 1
                if tx.item:
                    out.purchased.setdefault(tx.item, _ev(interaction_id, 0)).n += 1
            if tx.kind == "review" and tx.item and tx.outcome != "failure":
                out.reviewed.setdefault(tx.item, _ev(interaction_id, 0)).n += 1
            if tx.kind == "review" and tx.rating is not None:
                r = str(round(tx.rating))
                out.ratings[r] = out.ratings.get(r, 0) + 1
        groups = [
            ContentGroup(
                text=p.text[:TEXT_MAX],
                rep_id=interaction_id,
                minhash=p.minhash,
                n=1,
                domains={p.target: 1} if p.target else {},
                accounts={account_id: 1},
                ids=[interaction_id],
            )
            for p in facets.posted
        ]
        out.content = merge_groups(groups)
        for p in facets.posted:
            for host in link_hosts(p.text):
                if p.target and same_site(host, p.target):
                    continue  # a site linking to itself is not promotion elsewhere
                site = p.target or "?"
                per_site = out.link_sites.setdefault(host, {})
                per_site[site] = per_site.get(site, 0) + 1
        if facets.errors:
            out.errors = _ev(interaction_id, facets.errors)
        if facets.refusals:
            out.refusals = _ev(interaction_id, facets.refusals)
        out.risk_cues = {c: _ev(interaction_id) for c in facets.risk_cues}
        if facets.personal_data:
            out.personal_data = _ev(interaction_id, facets.personal_data)
        return out

    @classmethod
    def merge(cls, parts: list[RollupFacets]) -> RollupFacets:
        out = cls()
        groups: list[ContentGroup] = []
        starts: list[int] = []
        for p in parts:
            out.n_interactions += p.n_interactions
            out.unsummarized += p.unsummarized
            for a, c in p.accounts.items():
                out.accounts[a] = out.accounts.get(a, 0) + c
            if p.first_at and (out.first_at is None or p.first_at < out.first_at):
                out.first_at = p.first_at
            if p.last_at and (out.last_at is None or p.last_at > out.last_at):
                out.last_at = p.last_at
            starts.extend(p.starts)
            for k, c in p.actions.items():
                out.actions[k] = out.actions.get(k, 0) + c
            _merge_map(out.domains, p.domains)
            _merge_map(out.targets, p.targets)
            _merge_map(out.identities, p.identities)
            _merge_map(out.contacts, p.contacts)
            out.shortened_links += p.shortened_links
            _merge_map(out.transactions, p.transactions)
            _merge_map(out.risk_cues, p.risk_cues)
            _merge_map(out.engagements, p.engagements)
            _merge_map(out.reviewed, p.reviewed)
            _merge_map(out.purchased, p.purchased)
            out.purchased_quantity += p.purchased_quantity
            for r, c in p.ratings.items():
                out.ratings[r] = out.ratings.get(r, 0) + c
            groups.extend(p.content)
            out.errors.add(p.errors)
            out.refusals.add(p.refusals)
            out.personal_data.add(p.personal_data)
            for host, sites in p.link_sites.items():
                into = out.link_sites.setdefault(host, {})
                for site, c in sites.items():
                    into[site] = into.get(site, 0) + c
        out.starts = sorted(starts)
        out.content = merge_groups(groups)
        return out

    def unpurchased_reviews(self, reviews: int, purchases: int) -> int:
        """Reviews of items the window shows no purchase of. Reviews that name their item
        are matched to purchases of that item; the rest to purchases that name none."""
        keyed = sum(e.n for e in self.reviewed.values())
        matched = sum(
            min(e.n, self.purchased[item].n)
            for item, e in self.reviewed.items()
            if item in self.purchased
        )
        unkeyed_purchases = purchases - sum(e.n for e in self.purchased.values())
        return (keyed - matched) + max(0, (reviews - keyed) - max(0, unkeyed_purchases))

    def signals(self) -> dict[str, Any]:
        """Numbers the judges threshold on; each is defined here, once, in plain terms."""
        tx = {k: v.n for k, v in self.transactions.items()}

        def count(kind: str, outcome: str | None = None) -> int:
            return sum(
                n
                for k, n in tx.items()
                if k.split(":")[0] == kind and (outcome is None or k.endswith(":" + outcome))
            )

        posts = sum(g.n for g in self.content)
        dup_groups = [g for g in self.content if g.n >= 2]
        logins = count("login")
        login_fail = count("login", "failure")
        signups = count("signup")
        n_ratings = sum(self.ratings.values())
        specific = {t: e.n for t, e in self.targets.items() if specific_target(t)}
        all_domain_n = sum(e.n for e in self.domains.values())
        nonprod_n = sum(e.n for d, e in self.domains.items() if nonproduction_host(d))
        post_domains = {d for g in self.content for d in g.domains}
        dup_domains = len({d for g in dup_groups for d in g.domains})
        link_max_sites = max((len(s) for s in self.link_sites.values()), default=0)
        top_link_posts = max((sum(s.values()) for s in self.link_sites.values()), default=0)
        return {
            "interactions": self.n_interactions,
            "unsummarized": self.unsummarized,
            "accounts": len(self.accounts),
            "span_hours": round((self.last_at - self.first_at).total_seconds() / 3600, 2)
            if self.first_at and self.last_at
            else 0.0,
            "distinct_domains": len(self.domains),
            "distinct_targets": len(self.targets),
            "distinct_identities": len(self.identities),
            "posts": posts,
            "duplicate_groups": len(dup_groups),
            "largest_duplicate_group": max((g.n for g in self.content), default=0),
            "duplicate_post_share": round(sum(g.n for g in dup_groups) / posts, 3)
            if posts
            else 0.0,
            "duplicate_group_max_domains": max((len(g.domains) for g in dup_groups), default=0),
            "duplicate_group_max_accounts": max((len(g.accounts) for g in dup_groups), default=0),
            "duplicate_domains": dup_domains,
            "outlink_max_sites": link_max_sites,
            "outlink_top_share": round(top_link_posts / posts, 3) if posts else 0.0,
            "promotion_sites": max(dup_domains, link_max_sites),
            "signups": signups,
            "signup_identities": len([i for i in self.identities if i.startswith("[EMAIL:")]),
            "logins": logins,
            "login_failures": login_fail,
            "login_failure_rate": round(login_fail / logins, 3) if logins else 0.0,
            "purchases": count("purchase"),
            "purchased_quantity": self.purchased_quantity,
            "reviews": count("review"),
            "unpurchased_reviews": self.unpurchased_reviews(count("review"), count("purchase")),
            "review_mean_rating": round(
                sum(int(r) * c for r, c in self.ratings.items()) / n_ratings, 2
            )
            if n_ratings
            else None,
            "likes_follows_upvotes": count("like") + count("follow") + count("upvote"),
            "shares": count("share"),
            "listings": count("listing"),
            "coupon_redemptions": count("coupon"),
            "shortened_link_posts": self.shortened_links,
            "distinct_contacts": len(self.contacts),
            "errors": self.errors.n,
            "refusals": self.refusals.n,
            "risk_cues": sum(e.n for e in self.risk_cues.values()),
            **{key: self.risk_cues[c].n if c in self.risk_cues else 0 for c, key in CUES.items()},
            "account_identities": len(
                [i for i in self.identities if i.startswith(("[EMAIL:", "[USER:"))]
            ),
            "max_target_repeat": max(specific.values(), default=0),
            "profile_pages": sum(1 for t in self.targets if profile_page(t)),
            "personal_data_items": self.personal_data.n,
            "post_domains": len(post_domains),
            "review_extreme_share": round(
                (self.ratings.get("5", 0) + self.ratings.get("1", 0)) / n_ratings, 3
            )
            if n_ratings
            else 0.0,
            "nonproduction_share": round(nonprod_n / all_domain_n, 3) if all_domain_n else 0.0,
            **timing(self.starts),
        }


# The embedded extractor's fixed cue sentences, as signal names the rubrics can threshold.
CUES = {
    CUE_INJECTION: "cue_injected_instructions",
    CUE_INJECTION_ACTED: "cue_injection_acted",
    CUE_CAPTCHA: "cue_captcha",
    CUE_ASKS_SECRETS: "cue_asks_for_secrets",
    CUE_CLAIMS_OFFICIAL: "cue_speaks_for_staff",
    CUE_ABUSE: "cue_abuse",
    CUE_ASKS_EVASION: "cue_asks_evasion",
    CUE_ASKS_PHISHING_PAGE: "cue_asks_phishing_page",
    CUE_ASKS_IMPERSONATION: "cue_asks_impersonation",
    CUE_EXPOSES_PERSON: "cue_exposes_person",
    CUE_RUNS_DOWNLOAD: "cue_runs_download",
}
_PROFILE = re.compile(
    r"^[^/]+/(@[\w.-]+|(u|user|users|profile|profiles|people|person|members?|in|staff|team|"
    r"directory|contacts?)/[^/]+)",
    re.I,
)
_NONPROD_HOST = re.compile(
    r"^(localhost|127\.\d+\.\d+\.\d+|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+|"
    r"(staging|stage|dev|qa|test|sandbox|preview|uat)[.-].+|.+\.(local|internal|test|localhost))"
    r"(:\d+)?$",
    re.I,
)


_LINK = re.compile(
    r"(?<![\w@.-])(https?://)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+([a-z]{2,24}))"
    r"(?=(/|:\d|[\s),;!?\"']|\.(?:\s|$)|$))(/)?",
    re.I,
)


def link_hosts(text: str) -> set[str]:
    """Hosts a posted text links to (`https://a.example/x`, `a.example/x`, `www.a.com`).

    Redaction leaves links alone, so this reads the redacted text the summary keeps. Bare
    `word.word` counts only on a common TLD, so file names like `config.yaml` are not links.
    """
    out = set()
    for m in _LINK.finditer(text):
        host = m.group(2).lower()
        if m.group(1) or m.group(5) or host.startswith("www.") or m.group(3).lower() in BARE_TLDS:
            out.add(host.removeprefix("www."))
    return out


# Public URL shorteners: a link through one hides where it lands, which promotion relies on.
SHORTENERS = frozenset(
    [
        "bit.ly",
        "tinyurl.com",
        "t.co",
        "goo.gl",
        "ow.ly",
        "is.gd",
        "buff.ly",
        "rebrand.ly",
        "cutt.ly",
        "shorturl.at",
        "tiny.cc",
        "rb.gy",
        "t.ly",
        "s.id",
        "lnkd.in",
        "trib.al",
        "dlvr.it",
        "bl.ink",
        "short.io",
    ]
)
# A URL is taken whole (possessively, so once), then its rest after the host's first
# character is searched for a redirect parameter or path.
_URL = re.compile(r"https?://\S++", re.I)
_REDIRECT_PART = re.compile(
    r"[?&](?:url|u|redirect(?:_uri|_url)?|dest(?:ination)?|target|to|out|goto)"
    r"=https?(?:%3A|:)|/(?:out|redirect|r|go|link)/\S",
    re.I,
)


def _redirecting(text: str) -> bool:
    for m in _URL.finditer(text):
        rest = m.group(0).split("://", 1)[1][1:]
        if _REDIRECT_PART.search(rest):
            return True
    return False


def shortened(text: str) -> bool:
    """A posted text whose link goes through a shortener or a redirecting URL."""
    return bool(SHORTENERS & link_hosts(text)) or _redirecting(text)


def same_site(host: str, target: str) -> bool:
    """Whether a link host and the page it was posted on are one site (sub-domains included)."""
    site = target.split("/", 1)[0].lower().split(":", 1)[0]
    a, b = host.split("."), site.split(".")
    return a[-2:] == b[-2:] if len(a) >= 2 and len(b) >= 2 else host == site


def profile_page(target: str) -> bool:
    """A page about one person (/u/name, /@name, /people/name): what harvesting walks through."""
    return bool(_PROFILE.match(target))


def nonproduction_host(domain: str) -> bool:
    """Hosts that by convention are one's own test systems (localhost, staging., *.test).

    Sign-ups and logins there are what QA does; the look-alike the account rubrics weigh.
    """
    return bool(_NONPROD_HOST.match(domain))


def timing(starts: list[int]) -> dict[str, Any]:
    """Bursts, regularity and night share of interaction start times (UTC).

    Night is 00:00-06:00 UTC: the account's own time zone is rarely known, so this is a weak
    signal and is named for what it measures.
    """
    if not starts:
        return {"max_in_10min": 0, "interarrival_cv": None, "night_share_utc": 0.0}
    best, lo = 0, 0
    for hi, t in enumerate(starts):
        while t - starts[lo] > 600:
            lo += 1
        best = max(best, hi - lo + 1)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    cv = None
    if len(gaps) >= 3:
        mean = statistics.fmean(gaps)
        cv = round(statistics.pstdev(gaps) / mean, 3) if mean > 0 else 0.0
    night = sum(1 for t in starts if (t % 86400) < 6 * 3600)
    return {
        "max_in_10min": best,
        "interarrival_cv": cv,
        "night_share_utc": round(night / len(starts), 3),
    }


class CampaignLink(BaseModel):
    """Why accounts were put together: one piece of shared evidence."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["content", "target", "identity", "narrative", "engagement", "timing"]
    key: str = Field(description="the shared text (redacted), target, pseudonym or time bucket")
    accounts: list[str]
    ids: list[str] = Field(default_factory=list)
    by_account: dict[str, list[str]] = Field(
        default_factory=dict,
        description="a few interaction ids of each account behind the link",
    )


def spread(by_account: dict[str, list[str]], limit: int = CITE_MAX) -> list[str]:
    """Interaction ids taken in turn from each account, so that a handful of citations shows
    the coordination: the lowest ids overall would all come from one account."""
    queues = [sorted(set(ids)) for _, ids in sorted(by_account.items())]
    out: list[str] = []
    seen: set[str] = set()
    for rank in range(max((len(q) for q in queues), default=0)):
        for q in queues:
            if rank < len(q) and q[rank] not in seen:
                seen.add(q[rank])
                out.append(q[rank])
                if len(out) == limit:
                    return out
    return out


class Aggregate(BaseModel):
    """A finished rollup: one account-window, account-period or campaign."""

    model_config = ConfigDict(extra="forbid")

    aggregate_id: str
    kind: AggregateKind
    subject: str = Field(description="account id, or campaign id")
    window: str
    window_start: datetime
    window_end: datetime
    accounts: list[str]
    input_hash: str
    levels: int = Field(description="how many levels of summarization it took")
    backend: str
    model: str
    prompt_version: str
    text: str
    facets: RollupFacets
    signals: dict[str, Any]
    links: list[CampaignLink] = Field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
