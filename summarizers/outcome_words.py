"""How agents and tools say that something did not work.

One vocabulary for both readers: the agent's own final report (`facets`) and a function
call's result (`tool_semantics`), which also says "error", "sold out" or "rejected" where an
agent would have written "failed".
"""

from __future__ import annotations

import re

_WORDS = (
    r"fail(ed|ure)?|incorrect|invalid|denied|locked|suspended|banned|blocked|captcha|"
    r"too many (attempts|requests)|unauthori[sz]ed|forbidden|not allowed|rate.?limit"
)
REPORTED_FAILURE = re.compile(rf"\b({_WORDS})\b", re.I)
CALL_FAILURE = re.compile(rf"\b({_WORDS}|error|out of stock|sold out|rejected)\b", re.I)
