"""``fairpp train``: (weighted) DPO of a causal LM on a Fair-PP pair file, with a run card.

The model comes from a local path or a hub id (when online). With ``lora`` a PEFT LoRA adapter is trained
and saved (the base stays untouched and is the DPO reference); without it the whole model is trained
against a frozen copy. ``OUT`` receives the adapter or model, the tokenizer and ``fairpp_train_card.json``:
pairs file and hash, base, weighted or not, hyper-parameters, steps, the loss of every step, the final
loss, versions, device and time. Defaults are common DPO settings, not values taken from the paper.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from fairpp.train.data import (
    WEIGHT_NORMS, TrainError, dpo_rows, prompt_format, read_pairs, require_extra, summarize_card,
)

__all__ = ["TrainConfig", "train", "CARD_NAME", "read_card"]

log = logging.getLogger(__name__)

CARD_NAME = "fairpp_train_card.json"


@dataclass
class TrainConfig:
    """What ``fairpp train`` runs. ``lr=None`` picks 5e-6 (full model) or 5e-5 (LoRA); ``bf16`` and
    ``gradient_checkpointing`` ``None`` mean "on when a CUDA GPU is used" (bf16 only where supported)."""

    pairs: Path
    base: str
    out: Path
    weighted: bool = True
    lora: bool = False
    epochs: float = 1.0
    beta: float = 0.1
    lr: float | None = None
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int | None = 1024
    weight_norm: str = "batch"
    seed: int = 0
    prompt_format: str = "auto"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"
    bf16: bool | None = None
    gradient_checkpointing: bool | None = None
    precompute_ref: bool = False
    overwrite: bool = False

    def check(self) -> None:
        """Raise :class:`TrainError` naming the first bad setting."""
        checks = [
            (self.epochs > 0, f"epochs={self.epochs}: must be > 0"),
            (self.beta > 0 and math.isfinite(self.beta), f"beta={self.beta}: must be a positive number (0.1 is usual)"),
            (self.lr is None or self.lr > 0, f"lr={self.lr}: must be > 0"),
            (self.max_steps is None or self.max_steps > 0, f"max_steps={self.max_steps}: must be >= 1"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "batch size and gradient accumulation must be >= 1"),
            (self.weight_norm in WEIGHT_NORMS, f"weight_norm={self.weight_norm!r}: use one of {WEIGHT_NORMS}"),
            (self.lora_r >= 1, f"lora_r={self.lora_r}: must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise TrainError(msg + ".")

    @property
    def learning_rate(self) -> float:
        return float(self.lr) if self.lr is not None else (5e-5 if self.lora else 5e-6)


def read_card(model_dir: str | Path) -> dict[str, Any] | None:
    """The training run card in ``model_dir``, or ``None`` (a base model has none)."""
    path = Path(model_dir) / CARD_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise TrainError(f"--out {out} is a file; give a directory.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise TrainError(f"--out {out} is not empty; choose a new directory or pass --overwrite.")


def train(config: TrainConfig, *, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train as ``config`` says; returns the run card (also written to ``OUT/fairpp_train_card.json``).

    ``progress`` is called with each logged step (``{"step", "loss", ...}``).
    """
    config.check()
    require_extra()
    out = Path(config.out)
    _check_out(out, config.overwrite)
    pairs, pairs_info = read_pairs(config.pairs)

    import datasets
    import peft
    import torch
    import transformers
    import trl
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import DPOConfig

    from fairpp import __version__
    from fairpp.train.trainer import WeightedDPOTrainer

    started = time.time()
    cuda = torch.cuda.is_available()
    bf16 = bool(cuda and torch.cuda.is_bf16_supported()) if config.bf16 is None else bool(config.bf16)
    checkpointing = cuda if config.gradient_checkpointing is None else bool(config.gradient_checkpointing)
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.base)
        model = AutoModelForCausalLM.from_pretrained(config.base, dtype=torch.bfloat16 if bf16 else torch.float32)
    except (OSError, ValueError) as exc:
        raise TrainError(f"--base {config.base}: cannot load a causal LM and tokenizer from it ({exc}); give a local "
                         "model directory, or a hub id while online.") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    fmt = prompt_format(tokenizer, config.prompt_format)
    dataset = datasets.Dataset.from_dict(dpo_rows(pairs, fmt=fmt, weighted=config.weighted))
    out.mkdir(parents=True, exist_ok=True)
    args = DPOConfig(
        output_dir=str(out), beta=config.beta, learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, max_length=config.max_length, logging_steps=1,
        save_strategy="no", report_to="none", seed=config.seed, bf16=bf16, activation_checkpointing=checkpointing,
        precompute_ref_log_probs=config.precompute_ref, disable_tqdm=True, dataloader_num_workers=0,
        use_cpu=not cuda)
    lora = None
    if config.lora:
        lora = peft.LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                               target_modules=config.lora_targets, task_type="CAUSAL_LM")

    class _Progress(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                entry = {"step": int(state.global_step), **{k: float(v) for k, v in logs.items()
                                                            if isinstance(v, (int, float))}}
                log.info("step %d: loss %.4f", entry["step"], entry["loss"])
                if progress is not None:
                    progress(entry)

    trainer = WeightedDPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                 peft_config=lora, callbacks=[_Progress()], weight_norm=config.weight_norm)
    for cb in (PrinterCallback, ProgressCallback):  # they print to stdout; progress goes through `progress`
        trainer.remove_callback(cb)
    result = trainer.train()
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    history = trainer.state.log_history
    steps = [{"step": int(h["step"]), "loss": float(h["loss"]),
              **{k: float(h[k]) for k in ("rewards/accuracies", "rewards/margins", "loss/unweighted") if k in h}}
             for h in history if "loss" in h]
    pair_card = pairs_info.pop("card")
    card = {
        "kind": "fairpp.train", "run_id": uuid.uuid4().hex[:12], "fairpp_version": __version__,
        "created_at": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 2),
        "pairs": {**pairs_info, "card": summarize_card(pair_card)},
        "target": (pair_card or {}).get("target"), "synthetic": bool((pair_card or {}).get("synthetic")),
        "base": config.base, "weighted": config.weighted, "method": "weighted DPO" if config.weighted else "DPO",
        "weight_norm": config.weight_norm if config.weighted else None, "prompt_format": fmt,
        "model_kind": "lora-adapter" if config.lora else "full",
        "hyperparameters": {
            "epochs": config.epochs, "beta": config.beta, "learning_rate": config.learning_rate,
            "max_steps": config.max_steps, "batch_size": config.batch_size, "grad_accum": config.grad_accum,
            "max_length": config.max_length, "seed": config.seed, "bf16": bf16,
            "gradient_checkpointing": checkpointing, "precompute_ref": config.precompute_ref, "loss": "sigmoid",
            "lora": ({"r": config.lora_r, "alpha": config.lora_alpha, "dropout": config.lora_dropout,
                      "target_modules": config.lora_targets} if config.lora else None)},
        "steps": int(trainer.state.global_step), "final_loss": steps[-1]["loss"] if steps else None,
        "train_loss": float(result.training_loss), "losses": [s["loss"] for s in steps], "log": steps,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.machine()}, {os.cpu_count()} cores)",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "peft": peft.__version__, "datasets": datasets.__version__},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
    }
    if card["synthetic"]:
        card["warning"] = "trained on SYNTHETIC pairs (demo data): not a Fair-PP result."
    tmp = out / f".{CARD_NAME}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, out / CARD_NAME)
    log.info("trained %s for %d steps (final loss %s) -> %s", config.base, card["steps"], card["final_loss"], out)
    return card
