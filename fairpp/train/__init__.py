"""Weighted DPO training on reweighted Fair-PP pairs, evaluation, and the four-condition comparison.

The optional extra (``pip install -r requirements-train.txt`` or ``pip install -e .[train]``): torch, TRL,
transformers, PEFT, accelerate and datasets are imported only inside the functions that need them, so
``import fairpp`` and ``import fairpp.train`` never need them.

Modules:

- :mod:`~fairpp.train.data` (no torch): read a pair file, turn it into TRL's DPO rows, build prompts the
  same way for training and evaluation.
- :mod:`~fairpp.train.loss`: :func:`weighted_dpo_loss`, the per-example sigmoid DPO loss and its weighted mean.
- :mod:`~fairpp.train.trainer`: ``WeightedDPOTrainer``, TRL's ``DPOTrainer`` with per-sample weights.
- :mod:`~fairpp.train.run`: :func:`train` (``fairpp train``): model, optional LoRA, training, run card.
- :mod:`~fairpp.train.evaluate`: :func:`evaluate_model` (``fairpp evaluate``): the model answers held-out
  questions (next-token probabilities of A/B/C); the answers are stored as a respondent.
- :mod:`~fairpp.train.compare` (no torch): :func:`compare_conditions` (``fairpp compare``): JS distance and
  agreement of each condition to the target and every other persona, with bootstrap intervals.

Typical use::

    fairpp reweight --target "Progressive Activists" --slice split=train --out pairs.jsonl
    fairpp train --pairs pairs.jsonl --base BASE --out runs/wdpo --weighted --lora
    fairpp train --pairs pairs.jsonl --base BASE --out runs/dpo --unweighted --lora
    fairpp evaluate --model BASE --respondent base --split test
    fairpp evaluate --model BASE --respondent role-play --persona "Progressive Activists" --split test
    fairpp evaluate --model runs/dpo --respondent dpo --split test
    fairpp evaluate --model runs/wdpo --respondent wdpo --split test
    fairpp compare --target "Progressive Activists" --condition base=base --condition role-play=role-play \\
        --condition DPO=dpo --condition "weighted DPO"=wdpo --split test --save my-experiment
"""
from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "train", "evaluate_model", "compare_conditions", "weighted_dpo_loss", "read_pairs",
           "TrainError"]

_LAZY = {
    "TrainConfig": "fairpp.train.run", "train": "fairpp.train.run", "evaluate_model": "fairpp.train.evaluate",
    "compare_conditions": "fairpp.train.compare", "weighted_dpo_loss": "fairpp.train.loss",
    "read_pairs": "fairpp.train.data", "TrainError": "fairpp.train.data",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fairpp.train' has no attribute {name!r}")
