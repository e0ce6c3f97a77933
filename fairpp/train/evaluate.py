"""``fairpp evaluate``: a local model answers held-out questions; its answers are stored as a respondent.

Scoring follows the probe's convention: the next-token distribution right after the prompt (the same
prompt the model was trained on: :func:`fairpp.train.data.prompt_ids`) gives the mass of each option
letter, spellings ``"A"`` and ``" A"`` summed, renormalised over A, B and C. The answer is the most
probable letter; ``p_a, p_b, p_c`` are stored, so positions and JS distances use expected counts.
``raw`` records the share of the next-token mass the three letters held (low values mean the model
wanted to say something else). A model served behind an OpenAI-compatible endpoint (vLLM, for
instance) is evaluated with ``fairpp probe`` instead, which asks the same prompt; see docs/training.md.

Which questions: the ``split`` (``test`` by default) minus every question in the model's training pairs
(read from its run card), so a trained model is never scored on a question it was trained on.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from fairpp.train.data import TrainError, prompt_format, prompt_ids, question_prompt, read_pairs, require_extra
from fairpp.train.run import read_card

__all__ = ["evaluate_model", "load_model", "letter_token_ids", "score_prompts", "select_questions"]

log = logging.getLogger(__name__)
LETTERS = ("A", "B", "C")


def load_model(model: str | Path, *, base: str | None = None) -> tuple[Any, Any, dict[str, Any] | None]:
    """Load a model directory (full model or LoRA adapter) or a hub id; returns ``(model, tokenizer, card)``.

    An adapter is put on its base: ``base``, else the run card's, else the adapter config's.
    """
    require_extra()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(str(model))
    card = read_card(path) if path.is_dir() else None
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    adapter = path.is_dir() and (path / "adapter_config.json").is_file()
    try:
        if adapter:
            from peft import PeftModel

            base_id = base or (card or {}).get("base") or json.loads(
                (path / "adapter_config.json").read_text())["base_model_name_or_path"]
            net = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_id, dtype=dtype), str(path))
        else:
            net = AutoModelForCausalLM.from_pretrained(str(model), dtype=dtype)
        tok_src = path if (path.is_dir() and any(path.glob("tokenizer*"))) else (base or str(model))
        tokenizer = AutoTokenizer.from_pretrained(str(tok_src))
    except (OSError, ValueError, KeyError) as exc:
        raise TrainError(f"--model {model}: cannot load it ({exc}); give a directory `fairpp train` wrote, a local "
                         "model directory, or a hub id while online (an adapter also needs --base).") from exc
    net.to("cuda" if cuda else "cpu").eval()
    return net, tokenizer, card


def letter_token_ids(tokenizer: Any) -> dict[str, list[int]]:
    """Token ids that spell each option letter as one token (``"A"``, ``" A"``)."""
    out: dict[str, list[int]] = {}
    for letter in LETTERS:
        ids = set()
        for variant in (letter, f" {letter}"):
            enc = tokenizer.encode(variant, add_special_tokens=False)
            if len(enc) == 1:
                ids.add(int(enc[0]))
        if not ids:
            raise TrainError(f"the tokenizer has no single token for {letter!r}; letter scoring needs one. Evaluate "
                             "through an endpoint with `fairpp probe` instead.")
        out[letter] = sorted(ids)
    return out


def score_prompts(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], *, batch_size: int = 16,
                  progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Letter probabilities after each prompt: ``(probs (N, 3) renormalised over A/B/C, letter_mass (N,))``.

    Prompts are right-padded, and the logits at each prompt's last real token are read, so padding never
    changes a position or what a token attends to.
    """
    import torch

    ids = letter_token_ids(tokenizer)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    probs = np.zeros((len(prompts), 3))
    mass = np.zeros(len(prompts))
    for start in range(0, len(prompts), batch_size):
        chunk = [list(p) for p in prompts[start:start + batch_size]]
        width = max(len(p) for p in chunk)
        input_ids = torch.tensor([p + [pad] * (width - len(p)) for p in chunk], device=device)
        attn = torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in chunk], device=device)
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attn).logits
        last = torch.tensor([len(p) - 1 for p in chunk], device=device)
        p_next = torch.softmax(logits[torch.arange(len(chunk), device=device), last].float(), dim=-1)
        per_letter = torch.stack([p_next[:, ids[x]].sum(dim=1) for x in LETTERS], dim=1).cpu().numpy()
        total = per_letter.sum(axis=1)
        probs[start:start + len(chunk)] = per_letter / np.where(total > 0, total, 1.0)[:, None]
        mass[start:start + len(chunk)] = total
        if progress is not None:
            progress(min(start + batch_size, len(prompts)), len(prompts))
    return probs, mass


def select_questions(store: Any, *, split: str | None = "test", exclude: Sequence[int] = (),
                     filters: Mapping[str, Sequence[Any]] | None = None, limit: int | None = None) -> pd.DataFrame:
    """The questions to evaluate on: ``split`` (``None``: all) under ``filters``, minus ``exclude``."""
    f = {k: list(v) for k, v in (filters or {}).items()}
    if split:
        f["split"] = [split]
    qs = store.questions(f)
    if exclude:
        qs = qs[~qs["question_id"].isin(list(exclude))]
    if qs.empty:
        raise TrainError(f"no questions to evaluate on (split={split!r}, filters={dict(filters or {})}, "
                         f"{len(exclude)} training questions left out). Load a dataset with a test split, or export "
                         "the training pairs with --slice split=train so test questions stay held out.")
    qs = qs.sort_values("question_id", kind="stable")
    return qs.head(int(limit)) if limit else qs


def evaluate_model(store: Any, model: str | Path, *, respondent: str, persona: str | None = None,
                   system_prompt: str | None = None, split: str | None = "test",
                   filters: Mapping[str, Sequence[Any]] | None = None, exclude_pairs: str | Path | None = None,
                   base: str | None = None, limit: int | None = None, batch_size: int = 16,
                   condition: str | None = None, description: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Score ``model`` on the held-out questions and store its answers as ``respondent`` (kind ``custom``).

    ``persona`` adds that persona's role-play system prompt (the probe's); ``system_prompt`` a custom one.
    Questions in the model's training pairs (run card) and in ``exclude_pairs`` are left out.
    Returns the evaluation card (also stored as the respondent's provenance) plus ``answer_counts``.
    """
    from fairpp.probe.prompts import persona_prompt
    from fairpp.store.experiments import save_model_answers

    if persona and system_prompt:
        raise TrainError("give --persona or --system-prompt, not both.")
    system = persona_prompt(persona) if persona else system_prompt
    started = time.time()
    net, tokenizer, card = load_model(model, base=base)
    exclude: set[int] = set()
    for src in [p for p in ((card or {}).get("pairs", {}).get("path"), exclude_pairs) if p]:
        if Path(src).is_file():
            exclude |= set(read_pairs(src)[0].get("question_id", pd.Series(dtype="int64")).astype("int64"))
        elif src == exclude_pairs:
            raise TrainError(f"--exclude-pairs {src}: no such file.")
        else:
            log.warning("the run card's pair file %s is gone; its questions cannot be left out", src)
    qs = select_questions(store, split=split, exclude=sorted(exclude), filters=filters, limit=limit)
    fmt = (card or {}).get("prompt_format") or prompt_format(tokenizer)
    prompts = [prompt_ids(tokenizer, question_prompt(t, o), fmt=fmt, system=system)
               for t, o in zip(qs["text"], qs["options"])]
    probs, mass = score_prompts(net, tokenizer, prompts, batch_size=batch_size, progress=progress)
    letters = np.asarray(LETTERS)[probs.argmax(axis=1)]
    raw = [f"letter mass {m:.4f}" for m in mass]
    answers = pd.DataFrame({"question_id": qs["question_id"].to_numpy(), "answer": letters, "p_a": probs[:, 0],
                            "p_b": probs[:, 1], "p_c": probs[:, 2], "raw": raw})
    from fairpp import __version__

    info = store.active_source() or {}
    eval_card = {
        "kind": "fairpp.evaluate", "fairpp_version": __version__, "condition": condition,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 2), "model": str(model),
        "base": (card or {}).get("base") or base or str(model), "persona": persona,
        "system_prompt": system, "split": split, "filters": {k: list(v) for k, v in (filters or {}).items()},
        "questions": int(len(qs)), "excluded_training_questions": len(exclude), "prompt_format": fmt,
        "scoring": "next-token probabilities of the letters A/B/C after the prompt ('A' and ' A' summed), "
                   "renormalised over A, B, C; answer = most probable letter",
        "mean_letter_mass": float(mass.mean()), "train_card": card,
        "synthetic": bool(info.get("synthetic")) or bool((card or {}).get("synthetic")),
    }
    run_id = "eval-" + hashlib.sha256(json.dumps([respondent, str(model), system, split], default=str)
                                      .encode()).hexdigest()[:12]
    label = description or _describe(eval_card)
    stored = save_model_answers(store, answers, respondent=respondent, run_id=run_id, description=label,
                                provenance=eval_card, label=f"evaluation of {model} as {respondent}",
                                synthetic=eval_card["synthetic"])
    counts = pd.Series(letters).value_counts().reindex(list(LETTERS), fill_value=0)
    return {**eval_card, "respondent": respondent, "run_id": run_id, "stored": stored,
            "answer_counts": {k: int(v) for k, v in counts.items()}, "description": label}


def _describe(card: Mapping[str, Any]) -> str:
    train = card.get("train_card") or {}
    if train:
        what = f"{train.get('method', 'DPO')} of {train.get('base')} toward {train.get('target') or 'a target'}"
    else:
        what = f"{card.get('base')}" + (f" role-playing {card['persona']}" if card.get("persona") else "")
    return f"{what} ({card.get('condition') or 'evaluation'}, {card.get('questions')} questions)"
