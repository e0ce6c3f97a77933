"""TRL's ``DPOTrainer`` with per-sample weights (imports torch and TRL; load it only when training).

Everything but the loss is TRL's: dataset preparation (prompt/completion tokenisation, chat templates),
the reference model (a frozen copy, the PEFT base with the adapter disabled, or precomputed log-probs),
LoRA, mixed precision, distributed launch, logging and saving. Three small changes carry the weights:

1. the pair file's ``weight`` column is kept as a model input (signature columns),
2. :class:`WeightedPreferenceCollator` puts it into each batch,
3. :meth:`WeightedDPOTrainer.compute_loss` computes the per-example sigmoid DPO losses from TRL's policy and
   reference log-probabilities and returns their weighted mean (:func:`fairpp.train.loss.weighted_dpo_loss`).

Only the sigmoid loss (the paper's DPO) with TRL's default reverse-KL divergence is implemented; other
``loss_type`` settings are refused rather than silently ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from fairpp.train.data import WEIGHT_NORMS, TrainError
from fairpp.train.loss import weighted_dpo_loss

__all__ = ["WeightedDPOTrainer", "WeightedPreferenceCollator"]

_NON_MODEL = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps", "weight"}


@dataclass
class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator plus a ``weight`` tensor (1.0 where an example has none)."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = super().torch_call(examples)
        out["weight"] = torch.tensor([float(e.get("weight", 1.0)) for e in examples], dtype=torch.float32)
        return out


class WeightedDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` whose loss is ``sum_i w_i loss_i / sum_i w_i`` over each batch.

    Parameters are those of ``DPOTrainer`` plus ``weight_norm`` (``"batch"``, the default, or ``"dataset"``;
    see :mod:`fairpp.train.loss`). The train dataset carries ``prompt, chosen, rejected, weight``; without a
    ``weight`` column every pair weighs 1 and the loss is TRL's plain DPO loss.
    """

    def __init__(self, *args: Any, weight_norm: str = "batch", **kwargs: Any) -> None:
        if weight_norm not in WEIGHT_NORMS:
            raise TrainError(f"weight_norm={weight_norm!r}: use one of {WEIGHT_NORMS}.")
        args_ = kwargs.get("args") if "args" in kwargs else (args[2] if len(args) > 2 else None)
        if args_ is not None:
            if list(args_.loss_type) != ["sigmoid"] or args_.f_divergence_type != "reverse_kl" \
                    or args_.ld_alpha is not None or args_.use_weighting:
                raise TrainError("WeightedDPOTrainer implements the sigmoid DPO loss only: leave loss_type, "
                                 "f_divergence_type, ld_alpha and use_weighting at their defaults.")
        self.weight_norm = weight_norm
        super().__init__(*args, **kwargs)
        if type(self.data_collator) is DataCollatorForPreference:  # TRL's default: add the weights
            c = self.data_collator
            self.data_collator = WeightedPreferenceCollator(
                pad_token_id=c.pad_token_id, max_length=c.max_length, truncation_mode=c.truncation_mode,
                pad_to_multiple_of=c.pad_to_multiple_of, return_tensors=c.return_tensors)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if "weight" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "weight"]

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """TRL's reference log-probabilities (the weights are not a model input)."""
        return super().compute_ref_log_probs(model, {k: v for k, v in inputs.items() if k != "weight"})

    def policy_log_probs(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Summed completion log-probabilities of the chosen and rejected halves of a batch, as TRL computes them."""
        completion_mask = inputs["completion_mask"]
        model_kwargs = {k: v for k, v in inputs.items() if k not in _NON_MODEL}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        seq_len = completion_mask.size(1) - 1
        logps = outputs.log_probs[:, -seq_len:].sum(dim=1)
        chosen, rejected = logps.chunk(2, dim=0)  # the batch is [chosen..., rejected...]
        return chosen, rejected, outputs

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if return_outputs:
            raise TrainError("WeightedDPOTrainer returns no logits; evaluate with prediction_loss_only=True.")
        mode = "train" if self.model.training else "eval"
        chosen, rejected, outputs = self.policy_log_probs(model, inputs)
        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = self.compute_ref_log_probs(
                self.ref_model if self.ref_model is not None else model, inputs)
        ref_chosen, ref_rejected = ref_chosen.to(chosen.device), ref_rejected.to(chosen.device)
        weights = inputs.get("weight")
        loss, per_example = weighted_dpo_loss(chosen, rejected, ref_chosen, ref_rejected, weights, beta=self.beta,
                                              norm=self.weight_norm)
        if self.aux_loss_enabled and getattr(outputs, "aux_loss", None) is not None:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss
        self._log_metrics(mode, chosen, rejected, ref_chosen, ref_rejected, per_example)
        return loss

    def _log_metrics(self, mode: str, chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor,
                     ref_rejected: torch.Tensor, per_example: torch.Tensor) -> None:
        gather = self.accelerator.gather_for_metrics
        with torch.no_grad():
            r_c = self.beta * (chosen - ref_chosen).detach()
            r_r = self.beta * (rejected - ref_rejected).detach()
            m = self._metrics[mode]
            m["rewards/chosen"].append(gather(r_c).mean().item())
            m["rewards/rejected"].append(gather(r_r).mean().item())
            m["rewards/accuracies"].append(gather((r_c > r_r).float()).mean().item())
            m["rewards/margins"].append(gather(r_c - r_r).mean().item())
            m["loss/unweighted"].append(gather(per_example.detach()).mean().item())
            m["logps/chosen"].append(gather(chosen.detach()).mean().item())
            m["logps/rejected"].append(gather(rejected.detach()).mean().item())
