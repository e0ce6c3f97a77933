"""Pair files in, TRL's DPO rows out; one prompt builder for training and evaluation (no torch here).

Prompt formats (the run card records which one a model was trained with, and evaluation uses the same):

- ``chat`` (the tokenizer has a chat template, e.g. an instruct model): TRL's conversational layout.
  ``prompt`` is ``[system?, user]`` messages, ``chosen``/``rejected`` one assistant message
  (``"B. <option text>"``); the template is applied by TRL when training and by
  :func:`prompt_ids` when scoring, with the generation prompt.
- ``plain`` (no chat template, e.g. a base model or the tests' tiny model): ``prompt`` is
  ``"[system]\\n\\n<user>\\nAnswer:"`` and completions are ``" B. <option text>"``.

The user turn is the probe's prompt (:func:`fairpp.probe.prompts.build_messages`: the question, its
options, one instruction), exactly what :func:`fairpp.reweight.training_pairs` writes into ``prompt``,
so the trained model, the base model, the role-play prompt and a probed endpoint see the same question.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from fairpp.schema import FairppError

__all__ = ["TrainError", "read_pairs", "question_prompt", "dpo_rows", "pair_weights", "prompt_format",
           "prompt_ids", "PLAIN_SUFFIX", "WEIGHT_NORMS", "require_extra"]

log = logging.getLogger(__name__)

PLAIN_SUFFIX = "\nAnswer:"
#: How per-sample weights enter a batch's loss (see :func:`fairpp.train.loss.weighted_dpo_loss`).
WEIGHT_NORMS = ("batch", "dataset")
_NEEDED = ("prompt", "chosen", "rejected", "weight")


class TrainError(FairppError):
    """Training or evaluation that cannot run as asked; the message names the problem and the fix."""


def require_extra() -> None:
    """Raise :class:`TrainError` naming the install line when the training extra is missing."""
    import importlib.util

    missing = [m for m in ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise TrainError(f"the training extra is not installed (missing: {', '.join(missing)}); run "
                         "`pip install -r requirements-train.txt` (CPU torch 2.13.0) or `pip install -e .[train]`.")


def read_pairs(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a pair file from ``fairpp reweight`` (JSONL or Parquet) and describe it for a run card.

    Returns ``(pairs, info)``: ``info`` holds ``path``, ``sha256`` (of the file's bytes), ``rows``,
    ``format`` and ``card`` (the ``FILE.card.json`` written beside it, or ``None``).

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); p = os.path.join(d, "p.jsonl")
    >>> _ = open(p, "w").write('{"prompt": "q", "chosen": "A. x", "rejected": "B. y", "weight": 1.0}\\n')
    >>> pairs, info = read_pairs(p)
    >>> len(pairs), info["rows"], len(info["sha256"])
    (1, 1, 64)
    """
    from fairpp.reweight import ReweightError, output_format
    from fairpp.sources.files import file_sha256

    path = Path(path)
    if not path.is_file():
        raise TrainError(f"--pairs {path}: no such file; write one with `fairpp reweight --target NAME --out FILE`.")
    try:
        fmt = output_format(path)
    except ReweightError as exc:
        raise TrainError(str(exc)) from exc
    try:
        pairs = pd.read_parquet(path) if fmt == "parquet" else \
            pd.read_json(path, lines=True, dtype=False, precise_float=True)
    except (ValueError, OSError) as exc:
        raise TrainError(f"--pairs {path}: cannot read it as {fmt} ({exc}); export it again with fairpp reweight.") \
            from exc
    missing = [c for c in _NEEDED if c not in pairs.columns]
    if missing or pairs.empty:
        raise TrainError(f"--pairs {path}: {'columns ' + str(missing) + ' missing' if missing else 'no pairs'}; a pair "
                         "file needs prompt, chosen, rejected and weight (fairpp reweight writes them).")
    w = pd.to_numeric(pairs["weight"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise TrainError(f"--pairs {path}: weights must be finite, >= 0 and not all 0; export the file again.")
    card_path = path.with_name(path.name + ".card.json")
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else None
    info = {"path": str(path.resolve()), "name": path.name, "sha256": file_sha256(path), "rows": int(len(pairs)),
            "format": fmt, "card": card}
    return pairs, info


def question_prompt(text: str, options: str) -> str:
    """The user turn for one question: the probe's prompt, as in the exported pairs.

    >>> print(question_prompt("Which is fairer?", "A. merit\\nB. equal\\nC. N/A"))
    Which is fairer?
    <BLANKLINE>
    A. merit
    B. equal
    C. N/A
    <BLANKLINE>
    Answer with a single letter: A, B or C.
    """
    from fairpp.probe.prompts import INSTRUCTION, format_options, parse_options
    from fairpp.reweight import _parse_options  # the pairs' option parser (also reads collapsed blocks)

    return f"{str(text).strip()}\n\n{format_options(_parse_options(options, parse_options))}\n\n{INSTRUCTION}"


def prompt_format(tokenizer: Any, requested: str = "auto") -> str:
    """``chat`` when the tokenizer has a chat template (or ``requested`` says so), else ``plain``."""
    if requested not in ("auto", "chat", "plain"):
        raise TrainError(f"prompt format {requested!r}: use auto, chat or plain.")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if requested == "chat" and not has_template:
        raise TrainError("--prompt-format chat: the tokenizer has no chat template; use plain (or auto).")
    return requested if requested != "auto" else ("chat" if has_template else "plain")


def _messages(user: str, system: str | None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def _plain(user: str, system: str | None) -> str:
    return (f"{system}\n\n" if system else "") + user + PLAIN_SUFFIX


def pair_weights(weights: Sequence[float] | np.ndarray, *, weighted: bool) -> np.ndarray:
    """Per-pair loss weights, scaled to mean 1 (all 1 when not ``weighted``: plain DPO).

    >>> pair_weights([0.25, 0.75], weighted=True).tolist(), pair_weights([0.25, 0.75], weighted=False).tolist()
    ([0.5, 1.5], [1.0, 1.0])
    """
    w = np.asarray(weights, dtype=float)
    return w / w.mean() if weighted else np.ones_like(w)


def dpo_rows(pairs: pd.DataFrame, *, fmt: str, weighted: bool,
             system: str | None = None) -> dict[str, list[Any]]:
    """Columns of TRL's DPO dataset (``prompt, chosen, rejected, weight``) in the given prompt format.

    >>> p = pd.DataFrame({"prompt": ["Q?"], "chosen": ["A. x"], "rejected": ["B. y"], "weight": [0.5]})
    >>> r = dpo_rows(p, fmt="plain", weighted=True)
    >>> r["prompt"], r["chosen"], r["weight"]
    (['Q?\\nAnswer:'], [' A. x'], [1.0])
    >>> dpo_rows(p, fmt="chat", weighted=False)["chosen"]
    [[{'role': 'assistant', 'content': 'A. x'}]]
    """
    if fmt not in ("chat", "plain"):
        raise TrainError(f"prompt format {fmt!r}: use chat or plain.")
    users = pairs["prompt"].astype(str).tolist()
    chosen, rejected = pairs["chosen"].astype(str).tolist(), pairs["rejected"].astype(str).tolist()
    weights = pair_weights(pairs["weight"].to_numpy(dtype=float), weighted=weighted).tolist()
    if fmt == "chat":
        return {"prompt": [_messages(u, system) for u in users],
                "chosen": [[{"role": "assistant", "content": c}] for c in chosen],
                "rejected": [[{"role": "assistant", "content": r}] for r in rejected], "weight": weights}
    return {"prompt": [_plain(u, system) for u in users], "chosen": [f" {c}" for c in chosen],
            "rejected": [f" {r}" for r in rejected], "weight": weights}


def prompt_ids(tokenizer: Any, user: str, *, fmt: str, system: str | None = None) -> list[int]:
    """Token ids of a prompt, exactly as TRL tokenizes a training prompt (so scoring sees the same context)."""
    if fmt == "chat":
        from jinja2.exceptions import TemplateError  # a transformers dependency

        try:
            out = tokenizer.apply_chat_template(_messages(user, system), tokenize=True, add_generation_prompt=True,
                                                return_dict=True)
        except TemplateError as exc:  # templates without a system role raise from the template itself
            if not system:
                raise
            log.warning("the chat template refused a system message (%s); the persona prompt goes in the user turn",
                        exc)
            out = tokenizer.apply_chat_template(_messages(f"{system}\n\n{user}", None), tokenize=True,
                                                add_generation_prompt=True, return_dict=True)
        return list(out["input_ids"])
    return list(tokenizer(_plain(user, system))["input_ids"])


def summarize_card(card: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The parts of a pair file's card a training run card keeps."""
    if not card:
        return None
    keys = ("target", "alpha", "beta", "K", "records", "pairs", "synthetic", "filters", "na_handling",
            "pair_weighting", "tier_counts")
    return {k: card.get(k) for k in keys if k in card}
