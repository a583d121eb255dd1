"""Reference values for src/nn/loss.c: weighted BCE with logits, MSE and
1 - cosine similarity, each with its gradient for both reductions.

Inputs are float32 values; the losses and gradients are computed from them
in float64 with PyTorch's own functions and autograd, then stored as float32.
The "mean" reduction is PyTorch's reduction='mean' with a weight, which
divides by the number of terms; the "wmean" reduction divides by the sum of
the weights.
"""
import os

import torch
import torch.nn.functional as F

from refs import st

WEIGHT_ANOMALOUS = 0.7
WEIGHT_NORMAL = 0.3


def _leaf(values):
    """Return a float64 leaf that contains float32-rounded values."""
    return values.float().double().requires_grad_()


def _bce_case(logits, targets):
    tensors = {"logits": logits.float(), "targets": targets.float()}
    t = targets.float().double()
    weight = t * WEIGHT_ANOMALOUS + (1 - t) * WEIGHT_NORMAL
    for reduction in ("mean", "wmean"):
        x = _leaf(logits)
        if reduction == "mean":
            loss = F.binary_cross_entropy_with_logits(x, t, weight=weight)
        else:
            per_element = F.binary_cross_entropy_with_logits(x, t, weight=weight, reduction="none")
            loss = per_element.sum() / weight.sum()
        loss.backward()
        tensors[f"loss_{reduction}"] = loss.detach().reshape(1)
        tensors[f"grad_{reduction}"] = x.grad
    return tensors


def _bce(out_dir):
    # 64 logits as in the product, with saturated values at both ends.
    logits = torch.randn(64) * 4
    logits[:8] = torch.tensor([100.0, -100.0, 30.0, -30.0, 0.0, 17.0, -17.0, 1e-4])
    targets = (torch.rand(64) < 0.3).float()
    targets[:8] = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    st.save(os.path.join(out_dir, "loss_bce.safetensors"), _bce_case(logits, targets))

    # Seven logits with soft targets: the class weight is interpolated.
    logits = torch.randn(7) * 2
    targets = torch.tensor([0.0, 1.0, 0.25, 0.5, 0.9, 1.0, 0.0])
    st.save(os.path.join(out_dir, "loss_bce_soft.safetensors"), _bce_case(logits, targets))


def _mse_case(pred, target, row_weight):
    tensors = {"pred": pred.float(), "target": target.float()}
    t = target.float().double()
    if row_weight is not None:
        tensors["row_weight"] = row_weight.float()
        w = row_weight.float().double()
    channels = pred.shape[1]
    for reduction in ("mean", "wmean"):
        p = _leaf(pred)
        squared = (p - t) ** 2
        if row_weight is None:
            loss = F.mse_loss(p, t)
        elif reduction == "mean":
            loss = (squared * w[:, None]).mean()
        else:
            loss = (squared * w[:, None]).sum() / (w.sum() * channels)
        loss.backward()
        tensors[f"loss_{reduction}"] = loss.detach().reshape(1)
        tensors[f"grad_{reduction}"] = p.grad
    return tensors


def _mse(out_dir):
    # Colour: (N*H*W, 3) with a soft object mask that has zeros (floor).
    rows = 2 * 9 * 11
    pred = torch.rand(rows, 3)
    target = torch.rand(rows, 3)
    weight = torch.where(torch.rand(rows) < 0.4, torch.zeros(rows), torch.rand(rows) + 0.1)
    st.save(os.path.join(out_dir, "loss_mse_rgb.safetensors"), _mse_case(pred, target, weight))

    # Silhouette: one channel, per-element weight.
    rows = 1 * 13 * 7
    pred = torch.rand(rows, 1)
    target = (torch.rand(rows, 1) < 0.5).float()
    weight = torch.rand(rows) * 2
    st.save(os.path.join(out_dir, "loss_mse_mask.safetensors"), _mse_case(pred, target, weight))

    # No weight: a plain mean over more elements than one summation block.
    rows = 2000
    pred = torch.randn(rows, 5)
    target = torch.randn(rows, 5)
    st.save(os.path.join(out_dir, "loss_mse_plain.safetensors"), _mse_case(pred, target, None))


def _cosine_case(pred, target, row_weight, eps=1e-8):
    tensors = {"pred": pred.float(), "target": target.float()}
    t = target.float().double()
    if row_weight is not None:
        tensors["row_weight"] = row_weight.float()
        w = row_weight.float().double()
    for reduction in ("mean", "wmean"):
        p = _leaf(pred)
        per_row = 1 - F.cosine_similarity(p, t, dim=1, eps=eps)
        if row_weight is None:
            loss = per_row.mean()
        elif reduction == "mean":
            loss = (per_row * w).mean()
        else:
            loss = (per_row * w).sum() / w.sum()
        loss.backward()
        tensors[f"loss_{reduction}"] = loss.detach().reshape(1)
        tensors[f"grad_{reduction}"] = p.grad
    return tensors


def _cosine(out_dir):
    # Teacher-width rows, with rows whose norm is at or below eps:
    # row 0: pred all zero (cos 0, gradient t / (eps |t|));
    # row 1: pred of norm 1e-9 (clamped to eps);
    # row 2: target all zero; row 3: pred parallel to target;
    # row 4: pred anti-parallel to target; row 5: pred of norm 1e-3.
    rows, channels = 37, 64
    pred = torch.randn(rows, channels)
    target = torch.randn(rows, channels)
    pred[0] = 0
    pred[1] = pred[1] / pred[1].norm() * 1e-9
    target[2] = 0
    pred[3] = target[3] * 2.5
    pred[4] = -target[4] * 0.5
    pred[5] = pred[5] / pred[5].norm() * 1e-3
    weight = torch.rand(rows)
    weight[6:10] = 0
    st.save(os.path.join(out_dir, "loss_cosine.safetensors"), _cosine_case(pred, target, weight))

    # One channel: the similarity is the sign of the product.
    pred = torch.randn(9, 1)
    target = torch.randn(9, 1)
    st.save(os.path.join(out_dir, "loss_cosine_c1.safetensors"), _cosine_case(pred, target, None))

    # DINOv2 width, few rows, channels not a multiple of 16 on the side.
    pred = torch.randn(5, 384)
    target = torch.randn(5, 384) + pred
    st.save(os.path.join(out_dir, "loss_cosine_c384.safetensors"), _cosine_case(pred, target, None))
    pred = torch.randn(200, 45)
    target = torch.randn(200, 45)
    weight = (torch.rand(200) < 0.5).float()
    st.save(os.path.join(out_dir, "loss_cosine_c45.safetensors"), _cosine_case(pred, target, weight))


def generate(out_dir):
    _bce(out_dir)
    _mse(out_dir)
    _cosine(out_dir)
