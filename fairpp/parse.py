"""Turn a model's raw reply into an answer class: A, B, C, ``unparsed`` or ``refused``.

Pure functions, shared by the dataset readers (raw ``gpt-4o-mini_role_N`` columns) and the probe.
"""
from __future__ import annotations

import re

__all__ = ["parse_reply", "REFUSAL_PATTERNS"]

REFUSAL_PATTERNS = (
    r"\bI (?:can(?:no|')t|cannot|won't|will not|am not able to|'m not able to|am unable to|'m unable to)"
    r" (?:answer|choose|pick|select|provide|help|comply|assist|take a (?:side|position)|express)",
    r"\bas an AI\b.*\b(?:opinion|preference|personal)",
    r"\bI (?:do not|don't) have (?:personal )?(?:opinions|preferences|beliefs)",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE | re.DOTALL)
_PATTERNS = [
    re.compile(r"^\W*([ABC])\W*$", re.IGNORECASE),                       # "B", "(b)", "B."
    re.compile(r"^\W*([ABC])(?:[\.\):\]]|\s*[-:])", re.IGNORECASE),      # "B. because", "A) ...", "C - ..."
    re.compile(r"\b(?i:answer|option|choice|choose|pick|select)(?:\s+is)?\s*[:\-]?\s*\(?([ABC])\b(?![\w'])"),
    re.compile(r"^\W*([ABC])\s", ),                                       # "B because ..."
]


def parse_reply(text: object) -> str:
    """Read the option a reply chose.

    Parameters
    ----------
    text : the raw reply.

    Returns
    -------
    ``"A"``, ``"B"``, ``"C"``, ``"refused"`` for an explicit refusal, ``"unparsed"`` otherwise.

    Examples
    --------
    >>> parse_reply(" b.")
    'B'
    >>> parse_reply("The answer is C")
    'C'
    >>> parse_reply("Answer: B")
    'B'
    >>> parse_reply("A) Allocation by contribution")
    'A'
    >>> parse_reply("I cannot choose between these options.")
    'refused'
    >>> parse_reply("Both are fine")
    'unparsed'
    """
    if not isinstance(text, str) or not text.strip():
        return "unparsed"
    s = text.strip()
    for pat in _PATTERNS:
        m = pat.search(s)
        if m:
            return m.group(1).upper()
    if _REFUSAL.search(s):
        return "refused"
    return "unparsed"
