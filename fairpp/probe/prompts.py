"""Request building: pure functions from a question to chat messages, a request body and a cache key.

Nothing here touches the network. The prompt is the question, its options (optionally with A and B
swapped, to measure position bias) and an instruction to answer with one letter; a persona
role-play system prompt is optional.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from fairpp.schema import FairppError, taxonomy

__all__ = ["INSTRUCTION", "ProbeParams", "parse_options", "format_options", "build_messages",
           "persona_prompt", "persona_names_like", "request_body", "cache_key", "SWAP", "unswap"]

INSTRUCTION = "Answer with a single letter: A, B or C."
#: How a letter shown in a swapped prompt maps back to the question's own option (and back again).
SWAP = {"A": "B", "B": "A", "C": "C"}
_OPTION_LINE = re.compile(r"^\s*\(?([ABC])[\.\):]\s*(.*\S)\s*$")


@dataclass(frozen=True)
class ProbeParams:
    """Sampling parameters of every request of a run.

    ``temperature`` 0 makes a call deterministic (then cached); ``max_tokens`` bounds the reply;
    ``seed`` is passed through when given; ``logprobs``/``top_logprobs`` ask for the first tokens'
    alternatives (dropped automatically if the endpoint refuses them).

    >>> ProbeParams().fields(logprobs=True)
    {'temperature': 0.0, 'max_tokens': 5, 'logprobs': True, 'top_logprobs': 10}
    """

    temperature: float = 0.0
    max_tokens: int = 5
    seed: int | None = None
    logprobs: bool = True
    top_logprobs: int = 10

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.temperature) <= 2.0:
            raise FairppError(f"temperature={self.temperature!r} is out of range; use a number from 0 to 2.")
        if int(self.max_tokens) < 1:
            raise FairppError(f"max_tokens={self.max_tokens!r} must be at least 1 (5 is enough for a letter).")
        if not 0 <= int(self.top_logprobs) <= 20:
            raise FairppError(f"top_logprobs={self.top_logprobs!r} must be 0..20 (the OpenAI limit).")

    @property
    def deterministic(self) -> bool:
        """True for temperature 0: the only calls the cache may answer."""
        return float(self.temperature) == 0.0

    def fields(self, *, logprobs: bool) -> dict[str, Any]:
        """The body fields these parameters add to a request."""
        out: dict[str, Any] = {"temperature": float(self.temperature), "max_tokens": int(self.max_tokens)}
        if self.seed is not None:
            out["seed"] = int(self.seed)
        if logprobs and self.logprobs:
            out["logprobs"] = True
            out["top_logprobs"] = int(self.top_logprobs)
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_options(options: str) -> dict[str, str]:
    """Split an options block (``"A. ...\\nB. ...\\nC. N/A"``) into ``{"A": ..., "B": ..., "C": ...}``.

    Raises :class:`FairppError` when option A or B is missing; C defaults to ``"N/A"``.

    >>> parse_options("A. Share by merit.\\nB. Share equally.\\nC. N/A")
    {'A': 'Share by merit.', 'B': 'Share equally.', 'C': 'N/A'}
    """
    out: dict[str, str] = {}
    for line in str(options).splitlines():
        m = _OPTION_LINE.match(line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    if "A" not in out or "B" not in out:
        raise FairppError(f"cannot read options A and B from {str(options)[:80]!r}; a question's options must be "
                          "lines 'A. ...', 'B. ...' (and 'C. N/A').")
    out.setdefault("C", "N/A")
    return {k: out[k] for k in ("A", "B", "C")}


def format_options(opts: Mapping[str, str], *, swap: bool = False) -> str:
    """The options block as shown; with ``swap`` option B's text is shown as A and A's as B.

    >>> print(format_options({"A": "merit", "B": "equal", "C": "N/A"}, swap=True))
    A. equal
    B. merit
    C. N/A
    """
    shown = {k: opts[SWAP[k]] for k in "ABC"} if swap else dict(opts)
    return "\n".join(f"{k}. {shown[k]}" for k in "ABC")


def build_messages(text: str, options: str, *, swap: bool = False,
                   system: str | None = None) -> list[dict[str, str]]:
    """Chat messages asking one question.

    >>> m = build_messages("Which is fairer?", "A. merit\\nB. equal\\nC. N/A", system="You are Ann.")
    >>> [x["role"] for x in m]
    ['system', 'user']
    >>> print(m[1]["content"])
    Which is fairer?
    <BLANKLINE>
    A. merit
    B. equal
    C. N/A
    <BLANKLINE>
    Answer with a single letter: A, B or C.
    """
    user = f"{str(text).strip()}\n\n{format_options(parse_options(options), swap=swap)}\n\n{INSTRUCTION}"
    msgs = [{"role": "system", "content": system}] if system else []
    msgs.append({"role": "user", "content": user})
    return msgs


def persona_names_like(name: str) -> list[str]:
    """Persona names matching ``name`` (exact, case-insensitive, or a unique prefix)."""
    names = [p["name"] for p in taxonomy()["personas"]]
    key = name.strip().lower()
    exact = [n for n in names if n.lower() == key]
    return exact or [n for n in names if n.lower().startswith(key)]


def persona_prompt(name: str) -> str:
    """The role-play system prompt of a Fair-PP persona (its portrayal and how to answer).

    >>> persona_prompt("progressive").startswith("You are one of the Progressive Activists")
    True
    """
    found = persona_names_like(name)
    if len(found) != 1:
        names = [p["name"] for p in taxonomy()["personas"]]
        raise FairppError(f"persona {name!r} {'is ambiguous' if found else 'is unknown'}; use one of {names}.")
    persona = next(p for p in taxonomy()["personas"] if p["name"] == found[0])
    return (f"{persona['portrayal']}\n\nAnswer every question as this person would, from their point of view. "
            f"{INSTRUCTION}")


def request_body(model: str, messages: list[dict[str, str]], params: ProbeParams, *,
                 logprobs: bool = True) -> dict[str, Any]:
    """The JSON body of one chat-completions request.

    >>> request_body("m", [{"role": "user", "content": "q"}], ProbeParams(max_tokens=1), logprobs=False)
    {'model': 'm', 'messages': [{'role': 'user', 'content': 'q'}], 'temperature': 0.0, 'max_tokens': 1}
    """
    return {"model": model, "messages": messages, **params.fields(logprobs=logprobs)}


def cache_key(base_url: str, body: Mapping[str, Any], sample: int) -> str:
    """Content hash of a deterministic call: endpoint, model, messages, parameters and sample index.

    >>> k = cache_key("http://h/v1", {"model": "m", "messages": []}, 0)
    >>> len(k), k == cache_key("http://h/v1", {"messages": [], "model": "m"}, 0), k == cache_key(
    ...     "http://h/v1", {"model": "m", "messages": []}, 1)
    (64, True, False)
    """
    doc = json.dumps({"endpoint": base_url, "body": body, "sample": int(sample)}, sort_keys=True,
                     ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def unswap(letter: str, swapped: bool) -> str:
    """The question's own option for a letter shown in a (possibly) swapped prompt.

    >>> unswap("A", True), unswap("C", True), unswap("A", False), unswap("refused", True)
    ('B', 'C', 'A', 'refused')
    """
    return SWAP.get(letter, letter) if swapped else letter
