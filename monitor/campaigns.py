"""Cross-account campaigns: accounts tied by shared evidence, grouped by community detection.

Why this algorithm: comparing every pair of accounts is quadratic, and campaigns are defined
by what accounts share. So detection is an inverted index (in DuckDB) over the evidence each
account-window exposes (rollup_features), plus MinHash LSH bands for near-duplicate posts:
only accounts that share an index key are ever compared, and keys shared by too many accounts
(a shop's checkout page, a busy five minutes) are skipped as uninformative, which keeps the
work near-linear in accounts. Each piece of evidence adds weight to the tie between two
accounts; groups are the Leiden communities of that weighted graph (`coordination.py`), each
listed with the evidence behind its ties so a reviewer (and the judges) can weigh it.

Tie weights, with an edge at 1.0 or more:
- content: near-duplicate posts (MinHash similarity >= 0.6) made by several accounts: 1.0
  when the group holds five or more posts, or three or more that are at least a tenth of the
  posts of most of its accounts (the lower median: for two accounts, of both); else 0.5
  (people do write the same stock sentence now and then);
- identity: the same email or login used by both: 1.0; the same password: 1/3 (common
  passwords collide across unrelated people, a shared list of them does not);
- target: specific pages (things, not function pages like /login) visited by both and by
  few others: 1.0 for three or more shared, 0.5 for two, and only when the shared pages are
  at least 30% of the smaller account's targets and four times what chance predicts
  (a*b/U for accounts with a and b targets out of U): two busy shoppers share product pages
  by chance, a campaign shares most of its targets;
- narrative: posts that share rare wording (TF-IDF over accounts) far beyond what the
  population's pairs share: 0.5; paraphrases of the same talking points survive here when no
  two posts are near-duplicates, and add to shared stories or minutes;
- engagement: the same specific target liked, followed, upvoted or shared in the same half
  hour by both, when few others did: 0.5 per shared slot;
- timing: active in the same five-minute buckets, repeatedly, when few others are: 0.5.
Weak evidence alone never ties two accounts; a busy hour is not a conspiracy.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow.compute as pc

from tracewatch.monitor.aggregates import CITE_PER_ACCOUNT, CampaignLink, specific_target, spread
from tracewatch.monitor.coordination import clique_weights, communities, narrative_ties
from tracewatch.monitor.near_duplicates import SIMILARITY, UnionFind, linked_pairs
from tracewatch.monitor.rollup_store import RollupStore

TARGET_MIN_SHARED = 3
TARGET_MIN_SHARE = 0.3
TARGET_LIFT = 4.0
CONTENT_MIN_POSTS = 5
CONTENT_MIN_SHARE = 0.1
WEAK = 0.5
TIMING_MIN_BUCKETS = 3
TIMING_MIN_SHARE = 0.5
IDENTITY_MAX_ACCOUNTS = 50
PASSWORD_WEIGHT = 1 / 3
COENGAGEMENT_WEIGHT = 0.5  # per shared (target, half hour); two make a tie


def rare_cap(n_accounts: int) -> int:
    """Most accounts a target or time bucket may be shared by and still count as evidence."""
    return max(10, math.ceil(0.02 * n_accounts))


@dataclass
class Campaign:
    accounts: list[str]
    links: list[CampaignLink] = field(default_factory=list)


def detect(rs: RollupStore, window_size: str) -> list[Campaign]:
    k = rs.key
    con = rs.con
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _tw_f AS SELECT f.* FROM rollup_features f"
        " JOIN aggregates a USING (aggregate_id)"
        " WHERE a.kind = 'account_window' AND a.window_size = ? AND a.backend = ?"
        " AND a.model = ? AND a.prompt_version = ?",
        [window_size, k.backend, k.model, k.rollup_prompt_version],
    )
    try:
        n_accounts = con.execute("SELECT count(DISTINCT account_id) FROM _tw_f").fetchone()[0]
        cap = rare_cap(n_accounts)
        weight: dict[tuple[str, str], float] = defaultdict(float)
        evidence: dict[tuple[str, str], list[CampaignLink]] = defaultdict(list)
        links: list[CampaignLink] = []

        # Identities shared by a few accounts.
        for key, accounts, ids in con.execute(
            "WITH t AS (SELECT key, account_id, flatten(list(ids)) AS ids FROM _tw_f"
            " WHERE kind = 'identity' GROUP BY key, account_id)"
            " SELECT key, list(account_id ORDER BY account_id), list(ids ORDER BY account_id)"
            " FROM t GROUP BY key HAVING count(*) BETWEEN 2 AND ?",
            [IDENTITY_MAX_ACCOUNTS],
        ).fetchall():
            links.append(_link("identity", key, dict(zip(accounts, ids, strict=True))))

        # Near-duplicate posts across accounts: LSH band keys, confirmed on the signature.
        # Each post group (an aggregate's text) once, with its signature as one numpy row,
        # numbered in the order of its first band key; the buckets hold only those numbers.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _tw_cg AS"
            " WITH shared AS (SELECT key FROM _tw_f WHERE kind = 'content' GROUP BY key"
            " HAVING count(DISTINCT account_id) >= 2),"
            " banded AS (SELECT f.* FROM _tw_f f JOIN shared USING (key) WHERE f.kind = 'content')"
            " SELECT aggregate_id, account_id, text, any_value(minhash) AS minhash,"
            " any_value(n) AS n, any_value(ids) AS ids,"
            " row_number() OVER (ORDER BY min(key), account_id, aggregate_id, text) - 1 AS gid"
            " FROM banded GROUP BY aggregate_id, account_id, text"
        )
        table = con.sql(
            "SELECT account_id, text, n, ids, minhash FROM _tw_cg ORDER BY gid"
        ).to_arrow_table()
        info: list[tuple[str, str, int, list[str]]] = list(
            zip(
                table.column("account_id").to_pylist(),
                table.column("text").to_pylist(),
                table.column("n").to_pylist(),
                table.column("ids").to_pylist(),
                strict=True,
            )
        )
        signatures = _signature_rows(table.column("minhash"))
        del table
        buckets = [
            r[0]
            for r in con.execute(
                "SELECT list(g.gid ORDER BY f.account_id, f.aggregate_id, g.gid) FROM _tw_f f"
                " JOIN _tw_cg g ON g.aggregate_id = f.aggregate_id"
                " AND g.text IS NOT DISTINCT FROM f.text WHERE f.kind = 'content'"
                " GROUP BY f.key HAVING count(DISTINCT f.account_id) >= 2"
            ).fetchall()
        ]
        con.execute("DROP TABLE IF EXISTS _tw_cg")
        posts_by = dict(
            con.execute(
                "SELECT account_id, sum(n) FROM (SELECT DISTINCT aggregate_id, account_id, text, n"
                " FROM _tw_f WHERE kind = 'content') GROUP BY 1"
            ).fetchall()
        )
        uf = UnionFind(len(info))
        owner: dict[str, int] = {}
        owners = [owner.setdefault(g[0], len(owner)) for g in info]
        # Near-duplicates of two accounts join one group: the groups are the connected
        # components of those pairs, whatever order they are found in.
        for a, b in linked_pairs(signatures, owners, buckets, SIMILARITY):
            uf.union(a, b)
        for members in uf.groups():
            accounts = sorted({info[m][0] for m in members})
            if len(accounts) < 2:
                continue
            rep = min(members)
            by_account: dict[str, list[str]] = defaultdict(list)
            for m in members:
                by_account[info[m][0]].extend(info[m][3])
            link = _link("content", info[rep][1], by_account)
            n_posts = sum(info[m][2] for m in members)
            per_account: dict[str, int] = defaultdict(int)
            for m in members:
                per_account[info[m][0]] += info[m][2]
            shares = sorted(per_account[a] / max(1, posts_by[a]) for a in accounts)
            if n_posts >= CONTENT_MIN_POSTS or (
                n_posts >= 3 and shares[(len(shares) - 1) // 2] >= CONTENT_MIN_SHARE
            ):
                links.append(link)
            else:
                weight[accounts[0], accounts[1]] += WEAK
                evidence[accounts[0], accounts[1]].append(link)

        # Specific targets visited by few accounts: count them per pair (inverted index).
        universe = con.execute(
            "SELECT count(DISTINCT key) FROM _tw_f WHERE kind = 'target'"
        ).fetchone()[0]
        for a, b, shared, a_ids, b_ids, na, nb in con.execute(
            "WITH t AS (SELECT key, account_id, flatten(list(ids)) AS ids FROM _tw_f"
            " WHERE kind = 'target' GROUP BY key, account_id),"
            " per AS (SELECT account_id, count(*) AS n FROM t GROUP BY 1),"
            " rare AS (SELECT key FROM t GROUP BY key HAVING count(*) BETWEEN 2 AND ?)"
            " SELECT x.account_id, y.account_id, list(x.key ORDER BY x.key),"
            " flatten(list(x.ids)), flatten(list(y.ids)), any_value(px.n), any_value(py.n)"
            " FROM t x JOIN t y ON x.key = y.key AND x.account_id < y.account_id"
            " JOIN per px ON px.account_id = x.account_id"
            " JOIN per py ON py.account_id = y.account_id"
            " WHERE x.key IN (SELECT key FROM rare) GROUP BY 1, 2 HAVING count(*) >= 2",
            [cap],
        ).fetchall():
            # Two busy accounts in a small catalogue share pages by chance: compare with the
            # overlap expected if each drew its targets at random (a*b/U) and ask for a lift.
            expected = na * nb / max(1, universe)
            if len(shared) / min(na, nb) < TARGET_MIN_SHARE or len(shared) < TARGET_LIFT * expected:
                continue
            strong = len(shared) >= TARGET_MIN_SHARED
            weight[a, b] += 1.0 if strong else WEAK
            key = ", ".join(shared[:10]) + (
                f" (+{len(shared) - 10} more)" if len(shared) > 10 else ""
            )
            evidence[a, b].append(_link("target", key, {a: a_ids, b: b_ids}))

        # Co-engagement: the same specific target liked, followed, upvoted or shared in the
        # same half hour, when few others did; a viral post's crowd is over the cap.
        for a, b, slots, a_ids, b_ids in con.execute(
            "WITH t AS (SELECT key, account_id, flatten(list(ids)) AS ids FROM _tw_f"
            " WHERE kind = 'engage' GROUP BY key, account_id),"
            " rare AS (SELECT key FROM t GROUP BY key HAVING count(*) BETWEEN 2 AND ?)"
            " SELECT x.account_id, y.account_id, list(x.key ORDER BY x.key),"
            " flatten(list(x.ids)), flatten(list(y.ids))"
            " FROM t x JOIN t y ON x.key = y.key AND x.account_id < y.account_id"
            " WHERE x.key IN (SELECT key FROM rare) GROUP BY 1, 2",
            [cap],
        ).fetchall():
            targets = sorted(
                {k.rsplit("|", 1)[0] for k in slots if specific_target(k.rsplit("|", 1)[0])}
            )
            if not targets:
                continue
            weight[a, b] += min(1.0, COENGAGEMENT_WEIGHT * len(slots))
            evidence[a, b].append(
                _link("engagement", ", ".join(targets[:10]), {a: a_ids, b: b_ids})
            )

        # Co-activity in five-minute buckets that few accounts share.
        for a, b, shared, na, nb in con.execute(
            "WITH t AS (SELECT DISTINCT key, account_id FROM _tw_f WHERE kind = 'time'),"
            " per AS (SELECT account_id, count(*) AS n FROM t GROUP BY 1),"
            " rare AS (SELECT key FROM t GROUP BY key HAVING count(*) BETWEEN 2 AND ?)"
            " SELECT x.account_id, y.account_id, count(*), any_value(px.n), any_value(py.n)"
            " FROM t x JOIN t y ON x.key = y.key AND x.account_id < y.account_id"
            " JOIN per px ON px.account_id = x.account_id"
            " JOIN per py ON py.account_id = y.account_id"
            " WHERE x.key IN (SELECT key FROM rare) GROUP BY 1, 2 HAVING count(*) >= ?",
            [cap, TIMING_MIN_BUCKETS],
        ).fetchall():
            if shared / min(na, nb) >= TIMING_MIN_SHARE:
                weight[a, b] += WEAK
                evidence[a, b].append(
                    CampaignLink(
                        kind="timing",
                        key=f"{shared} shared five-minute buckets of {min(na, nb)}",
                        accounts=[a, b],
                    )
                )

        posts: dict[str, list[str]] = defaultdict(list)
        for account, text in con.execute(
            "SELECT DISTINCT account_id, text FROM _tw_f WHERE kind = 'content'"
            " ORDER BY account_id, text"
        ).fetchall():
            posts[account].append(text)
    finally:
        con.execute("DROP TABLE IF EXISTS _tw_f")
        con.execute("DROP TABLE IF EXISTS _tw_cg")

    for (a, b), w in narrative_ties(posts).items():
        weight[a, b] += w
        evidence[a, b].append(
            CampaignLink(
                kind="narrative",
                key="posts share rare wording beyond the population",
                accounts=[a, b],
            )
        )
    clique_weights(((lk.accounts, _link_weight(lk)) for lk in links), weight)
    out = []
    for names in communities(weight):
        inside = set(names)
        kept = [r for lk in links if (r := _within(lk, inside))]
        # Every pair's evidence between members, whether or not it linked them on its own.
        for (a, b), lks in evidence.items():
            if a in inside and b in inside:
                kept.extend(lks)
        out.append(
            Campaign(
                accounts=names,
                links=sorted(
                    kept, key=lambda lk: (_ORDER[lk.kind], -len(lk.accounts), lk.key, lk.accounts)
                ),
            )
        )
    out.sort(key=lambda c: (-len(c.accounts), c.accounts))
    return out


def _signature_rows(column: Any) -> np.ndarray:
    """A column of MinHash signatures (lists of uint64) as one row per signature; signatures
    of another length (none are made) as a list, which `linked_pairs` compares one by one."""
    lengths = set(pc.list_value_length(column).to_pylist()) if len(column) else set()
    if len(lengths) != 1 or 0 in lengths:
        return column.to_pylist()
    width = lengths.pop()
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.uint64)
    return flat.reshape(len(column), width)


def _link_weight(link: CampaignLink) -> float:
    """A shared login or address ties accounts; a shared password only weakly, since common
    passwords collide by chance across unrelated people."""
    if link.kind == "identity" and link.key.startswith("[PASSWORD:"):
        return PASSWORD_WEIGHT
    return 1.0


def _within(link: CampaignLink, inside: set[str]) -> CampaignLink | None:
    """A link as it bears on one group: only its members, if two or more are in it."""
    members = [a for a in link.accounts if a in inside]
    if len(members) < 2:
        return None
    if len(members) == len(link.accounts):
        return link
    by_account = {a: ids for a, ids in link.by_account.items() if a in inside}
    return CampaignLink(
        kind=link.kind,
        key=link.key,
        accounts=members,
        ids=spread(by_account),
        by_account=by_account,
    )


def _link(
    kind: Literal["content", "target", "identity", "engagement"],
    key: str,
    by_account: dict[str, list[str]],
) -> CampaignLink:
    kept = {a: sorted(set(ids))[:CITE_PER_ACCOUNT] for a, ids in sorted(by_account.items())}
    return CampaignLink(kind=kind, key=key, accounts=list(kept), ids=spread(kept), by_account=kept)


_ORDER = {"content": 0, "identity": 1, "target": 2, "engagement": 3, "narrative": 4, "timing": 5}
