"""Reply parsing: pure functions from a chat-completions reply (a decoded JSON dict) to an answer.

* When the reply carries logprobs, the probabilities of A, B and C come from the first answer token
  (the first generated token that reads as an option letter): the alternatives "A", " A", "a", "(A"
  count as the same option, and the mass is renormalised over A, B and C.
* Otherwise the answer is the letter :func:`fairpp.parse.parse_reply` reads in the text (or, failing
  that, the one option whose text the reply repeats).
* Refusals and unparseable replies are their own classes, with their raw text kept; they never
  become "C" and carry no probabilities.
* A reply to a prompt with swapped options is mapped back to the question's own options.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from fairpp.parse import parse_reply
from fairpp.probe.prompts import unswap
from fairpp.schema import FairppError

__all__ = ["Extracted", "BadReply", "normalise_token", "letter_probs", "answer_token_alternatives",
           "extract", "reply_text"]

_PUNCT = " \t\r\n()[]{}.:;,*\"'`_-"


class BadReply(FairppError):
    """A reply that is not a usable chat completion (no choices, wrong shape). Retried by the runner."""


@dataclass(frozen=True)
class Extracted:
    """An answer read from a reply, in the question's own option order.

    ``answer`` is A, B, C, ``refused`` or ``unparsed``; ``p_a``/``p_b``/``p_c`` the renormalised
    first-answer-token probabilities (``None`` without logprobs, or for refused/unparsed);
    ``shown`` the letter as the model gave it (before mapping a swapped prompt back); ``raw`` the text.
    """

    answer: str
    p_a: float | None
    p_b: float | None
    p_c: float | None
    raw: str
    shown: str | None
    from_logprobs: bool


def normalise_token(token: object) -> str | None:
    """The option a token stands for, or ``None``.

    >>> [normalise_token(t) for t in ["A", " A", "a", "(b", "C.", " The", "AB", ""]]
    ['A', 'A', 'A', 'B', 'C', None, None, None]
    """
    if not isinstance(token, str):
        return None
    core = token.strip(_PUNCT).upper()
    return core if core in ("A", "B", "C") else None


def letter_probs(alternatives: Iterable[Any]) -> dict[str, float] | None:
    """Renormalised probabilities of A, B, C from one token's alternatives.

    ``alternatives`` holds ``{"token": ..., "logprob": ...}`` dicts (or ``(token, logprob)`` pairs).
    Spellings of the same option are summed. ``None`` when no alternative is an option.

    >>> import math
    >>> p = letter_probs([{"token": "B", "logprob": math.log(0.5)}, {"token": " B", "logprob": math.log(0.1)},
    ...                   {"token": "a", "logprob": math.log(0.2)}, {"token": "The", "logprob": math.log(0.2)}])
    >>> {k: round(v, 3) for k, v in p.items()}
    {'A': 0.25, 'B': 0.75, 'C': 0.0}
    >>> letter_probs([{"token": "Sure", "logprob": 0.0}]) is None
    True
    """
    mass = {"A": 0.0, "B": 0.0, "C": 0.0}
    seen = set()
    for alt in alternatives or ():
        tok, lp = (alt.get("token"), alt.get("logprob")) if isinstance(alt, Mapping) else alt
        letter = normalise_token(tok)
        if letter is None or lp is None or tok in seen:
            continue
        seen.add(tok)
        try:
            mass[letter] += math.exp(float(lp))
        except (TypeError, ValueError, OverflowError):
            continue
    total = sum(mass.values())
    if not total > 0 or not math.isfinite(total):
        return None
    return {k: v / total for k, v in mass.items()}


def answer_token_alternatives(logprobs: Any, *, max_tokens: int = 8) -> list[Any] | None:
    """The alternatives of the first answer token in a choice's ``logprobs`` (``{"content": [...]}``).

    The first answer token is the first of the first ``max_tokens`` generated tokens that reads as
    an option letter; its ``top_logprobs`` (or the token itself when there are none) are returned.
    """
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not isinstance(content, list):
        return None
    for entry in content[:max_tokens]:
        if not isinstance(entry, Mapping):
            return None
        if normalise_token(entry.get("token")) is not None:
            top = entry.get("top_logprobs") or []
            chosen = {"token": entry.get("token"), "logprob": entry.get("logprob")}
            return list(top) if any(isinstance(t, Mapping) and t.get("token") == chosen["token"]
                                    for t in top) else [chosen, *top]
    return None


def reply_text(completion: Any) -> tuple[str | None, str | None, Any]:
    """``(content, refusal, logprobs)`` of the first choice; raises :class:`BadReply` on a bad shape."""
    if not isinstance(completion, Mapping):
        raise BadReply(f"the reply is not a JSON object but {type(completion).__name__}")
    choices = completion.get("choices")
    if not isinstance(choices, list):
        raise BadReply("the reply has no 'choices' list")
    if not choices:
        raise BadReply("the reply has an empty 'choices' list")
    choice = choices[0]
    if not isinstance(choice, Mapping):
        raise BadReply("the reply's first choice is not an object")
    message = choice.get("message") if isinstance(choice.get("message"), Mapping) else {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    if content is None and isinstance(choice.get("text"), str):  # completions-style servers
        content = choice["text"]
    refusal = message.get("refusal")
    return (content if isinstance(content, str) else None,
            refusal if isinstance(refusal, str) and refusal.strip() else None, choice.get("logprobs"))


def _by_option_text(text: str, options: Mapping[str, str] | None) -> str | None:
    if not options:
        return None
    low = " ".join(text.lower().split())
    hits = [k for k in ("A", "B") if options.get(k) and " ".join(options[k].lower().split()).rstrip(".") in low]
    return hits[0] if len(hits) == 1 else None


def extract(completion: Any, *, swapped: bool = False,
            shown_options: Mapping[str, str] | None = None) -> Extracted:
    """Read the answer of one chat completion (a decoded JSON dict).

    Parameters
    ----------
    completion : the reply.
    swapped : the prompt showed option B's text as A and A's as B; the answer is mapped back.
    shown_options : the options as shown, to recognise a reply that repeats an option's text.

    Examples
    --------
    >>> import math
    >>> reply = {"choices": [{"message": {"content": "A"}, "logprobs": {"content": [{"token": "A",
    ...     "logprob": math.log(0.6), "top_logprobs": [{"token": "A", "logprob": math.log(0.6)},
    ...     {"token": " B", "logprob": math.log(0.3)}, {"token": "C", "logprob": math.log(0.1)}]}]}}]}
    >>> e = extract(reply, swapped=True)
    >>> e.answer, e.shown, round(e.p_a, 2), round(e.p_b, 2), round(e.p_c, 2)
    ('B', 'A', 0.3, 0.6, 0.1)
    >>> extract({"choices": [{"message": {"content": "I cannot choose between these."}}]}).answer
    'refused'
    >>> extract({"choices": [{"message": {"content": None, "refusal": "I can't help with that."}}]}).raw
    "I can't help with that."
    """
    content, refusal, logprobs = reply_text(completion)
    if not (content or "").strip() and refusal:
        return Extracted("refused", None, None, None, refusal, None, False)
    text = content or ""
    cls = parse_reply(text)
    if cls == "unparsed":
        cls = _by_option_text(text, shown_options) or cls
    if cls not in ("A", "B", "C"):
        return Extracted(cls, None, None, None, text, None, False)
    probs = letter_probs(answer_token_alternatives(logprobs) or [])
    answer = unswap(cls, swapped)
    if probs is None:
        return Extracted(answer, None, None, None, text, cls, False)
    own = {unswap(k, swapped): v for k, v in probs.items()} if swapped else probs
    return Extracted(answer, own["A"], own["B"], own["C"], text, cls, True)
