"""The per-example sigmoid DPO loss and its weighted mean (torch only).

For pair ``i`` with summed completion log-probabilities under the policy (``pi_c``, ``pi_r``) and the
reference (``ref_c``, ``ref_r``)::

    loss_i = -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))

and a batch's loss is the weighted mean ``sum_i w_i loss_i / sum_i w_i`` (``norm="batch"``, the default).
Equal weights give TRL's plain DPO loss (``mean_i loss_i``) exactly. ``norm="dataset"`` gives
``mean_i w_i loss_i`` with weights scaled to mean 1 over the whole pair file: an unbiased estimate of the
full-data weighted loss, which keeps the weighting between batches too (with ``norm="batch"`` a batch of
low-weight pairs moves the model as much as a batch of high-weight ones; with batch size 1 the weights
would do nothing).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fairpp.train.data import WEIGHT_NORMS, TrainError

__all__ = ["dpo_losses", "weighted_dpo_loss"]


def dpo_losses(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
               ref_rejected: torch.Tensor, *, beta: float) -> torch.Tensor:
    """Per-example sigmoid DPO losses, shape ``(B,)``.

    >>> z = torch.zeros(2)
    >>> dpo_losses(z, z, z, z, beta=0.1).tolist() == [torch.log(torch.tensor(2.0)).item()] * 2
    True
    """
    return -F.logsigmoid(beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)))


def weighted_dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                      ref_rejected: torch.Tensor, weights: torch.Tensor | None = None, *, beta: float,
                      norm: str = "batch") -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted DPO loss of a batch and the per-example losses.

    Parameters
    ----------
    policy_chosen, policy_rejected, ref_chosen, ref_rejected : tensors of shape ``(B,)``
        Summed log-probabilities of each pair's chosen and rejected completion.
    weights : tensor of shape ``(B,)``, optional
        Per-pair weights (>= 0); ``None`` means all 1 (plain DPO).
    beta : the DPO temperature.
    norm : ``"batch"`` (``sum w_i loss_i / sum w_i``) or ``"dataset"`` (``mean w_i loss_i``; pass weights
        scaled to mean 1 over the pair file).

    Returns
    -------
    loss, per_example : the scalar loss and the ``(B,)`` unweighted per-example losses.

    Examples
    --------
    >>> pc, pr = torch.tensor([-1.0, -2.0]), torch.tensor([-2.0, -1.0])
    >>> rc = rr = torch.tensor([-1.5, -1.5])
    >>> loss, per = weighted_dpo_loss(pc, pr, rc, rr, torch.tensor([3.0, 1.0]), beta=1.0)
    >>> round(loss.item(), 4), [round(x, 4) for x in per.tolist()]
    (0.5633, [0.3133, 1.3133])
    """
    if norm not in WEIGHT_NORMS:
        raise TrainError(f"norm={norm!r}: use one of {WEIGHT_NORMS}.")
    per = dpo_losses(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=beta)
    if weights is None:
        return per.mean(), per
    w = weights.to(per.device, per.dtype)
    if norm == "dataset":
        return (w * per).mean(), per
    return (w * per).sum() / w.sum().clamp_min(torch.finfo(per.dtype).tiny), per
