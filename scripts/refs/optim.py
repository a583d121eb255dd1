"""Reference values for src/nn/optim.c: several steps of torch.optim.Adam
(and AdamW) with two parameter groups and torch.nn.utils.clip_grad_norm_.

Each file holds, for every parameter <name>: "<name>.init", the gradient
before clipping of every step k ("<name>.grad.<k>"), the value after step k
("<name>.value.<k>"), the moments after the last step ("<name>.exp_avg",
"<name>.exp_avg_sq"), and "total_norm" (steps,), the norm that clipping
returned at each step. The metadata carries the optimizer settings as
Python float text, so the C test builds the same optimizer:
"optimizer" (adam or adamw), "steps", "max_norm", "groups", and per group i
"group<i>.lr", ".beta1", ".beta2", ".eps", ".weight_decay", ".params"
(comma-separated names).

Everything runs in float32, as training does, with foreach=False (the
single-tensor path of PyTorch 1.13).
"""
import os

import torch

from refs import st

STEPS = 6


def _parameters():
    """Two groups of odd shapes, including a scalar."""
    backbone = {
        "conv.weight": torch.randn(7, 5, 3),
        "conv.bias": torch.randn(7) * 0.1,
        "temperature": torch.tensor(1.5),
    }
    matcher = {
        "proj.weight": torch.randn(11, 13) * 0.5,
        "proj.bias": torch.zeros(1),
    }
    return [backbone, matcher]


def _gradient(name, shape, step):
    """Gradients whose global norm moves around max_norm from step to step,
    with exact zeros (the moments stay 0) and values far below eps."""
    scale = [3.0, 0.5, 1.5, 0.2, 10.0, 0.8][step]
    g = torch.randn(shape) * scale * 0.1
    if name == "conv.weight":
        g.view(-1)[:5] = 0
    if name == "conv.bias":
        g[:3] = torch.tensor([1e-9, -3e-9, 1e-12])
    return g


def _run(out_dir, file_name, optimizer_name, groups, max_norm):
    params = _parameters()
    tensors = {}
    torch_groups = []
    metadata = {"optimizer": optimizer_name, "steps": STEPS, "max_norm": repr(max_norm),
                "groups": len(groups)}
    for index, (settings, group_params) in enumerate(zip(groups, params)):
        leaves = []
        for name, value in group_params.items():
            tensors[f"{name}.init"] = value.clone()
            leaves.append(value.clone().requires_grad_())
        torch_groups.append({"params": leaves, **settings})
        for key, value in settings.items():
            metadata[f"group{index}.{key}"] = repr(value[0] if key == "betas" else value)
        metadata[f"group{index}.beta1"] = repr(settings["betas"][0])
        metadata[f"group{index}.beta2"] = repr(settings["betas"][1])
        metadata[f"group{index}.params"] = ",".join(group_params)
    names = [name for group in params for name in group]
    leaves = [leaf for group in torch_groups for leaf in group["params"]]

    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(torch_groups, foreach=False)
    else:
        optimizer = torch.optim.AdamW(torch_groups, foreach=False)
    norms = []
    for step in range(STEPS):
        for name, leaf in zip(names, leaves):
            grad = _gradient(name, leaf.shape, step)
            tensors[f"{name}.grad.{step}"] = grad.clone()
            leaf.grad = grad
        norms.append(float(torch.nn.utils.clip_grad_norm_(leaves, max_norm)))
        optimizer.step()
        for name, leaf in zip(names, leaves):
            tensors[f"{name}.value.{step}"] = leaf.detach().clone()
    for name, leaf in zip(names, leaves):
        state = optimizer.state[leaf]
        tensors[f"{name}.exp_avg"] = state["exp_avg"].clone()
        tensors[f"{name}.exp_avg_sq"] = state["exp_avg_sq"].clone()
    tensors["total_norm"] = torch.tensor(norms)
    for key in list(metadata):
        if key.endswith(".betas"):
            del metadata[key]
    st.save(os.path.join(out_dir, file_name), tensors, metadata)


def generate(out_dir):
    # The product: betas (0.0, 0.999), backbone 1e-5, matcher 2e-5.
    _run(out_dir, "optim_adam_product.safetensors", "adam",
         [{"lr": 1e-5, "betas": (0.0, 0.999), "eps": 1e-8, "weight_decay": 0.0},
          {"lr": 2e-5, "betas": (0.0, 0.999), "eps": 1e-8, "weight_decay": 0.0}], 1.0)
    # Large steps, a first moment, and L2 weight decay on one group.
    _run(out_dir, "optim_adam_general.safetensors", "adam",
         [{"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
          {"lr": 3e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.02}], 2.0)
    # Decoupled weight decay (AdamW).
    _run(out_dir, "optim_adamw.safetensors", "adamw",
         [{"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1},
          {"lr": 5e-3, "betas": (0.5, 0.999), "eps": 1e-8, "weight_decay": 0.0}], 0.5)
