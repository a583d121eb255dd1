"""Reference values for the matcher and classifier (src/model/matcher.h).

Matcher below is the PyTorch twin of the C module, with the same structure
and state_dict names. generate(out_dir) runs one forward and backward of the
weighted BCE loss in float64 for each variant (full, A, B; C computes as B)
on O = 3 objects of n = 4 cells, and writes matcher_<variant>.safetensors:
  <name>          every parameter (LayerNorm affine weights, attention and
                  LayerNorm biases drawn away from 1 and 0, so a mix-up shows)
  crops           (O, n, n, n, Cin) channels-last, zero at empty cells
  mask            (O, n, n, n), 1 = occupied; object 2 has 2 occupied cells,
                  fewer than top_k, so its key lists repeat
  labels          (O,) uint8
  logits, loss, d_logits   the forward's logits, the loss and its gradient
  grad.crops, grad.<name>  gradients of the loss
  index           (O T, K) int32 key lists of the full variant
  config          int64: objects, cells, trunk_channels, teacher_channels,
                  channels, heads, blocks, top_k
The inputs are drawn until no two candidate similarities of one query lie
within 1e-5 of each other, so float32 rounding cannot reorder the top-k
choice. Empty cells have zero teacher slices, so their similarities are all
exactly 0 and the choice there is the lowest cell indices.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from refs import st
from refs.attention import sparse_attention

OBJECTS = 3
CELLS = 4
TRUNK_CHANNELS = 3
TEACHER_CHANNELS = 4
CHANNELS = 8
HEADS = 2
BLOCKS = 2
TOP_K = 3
ANOMALY_WEIGHT = 0.7
NORMAL_WEIGHT = 0.3
COSINE_EPS = 1e-8
TIE_MARGIN = 1e-5


class GEGLU(nn.Module):
    def forward(self, x):
        a, b = x.chunk(2, dim=-1)
        return a * F.gelu(b)


class Block(nn.Module):
    """x += Attn(LN1(x)) (when attention); x += FF(LN2(x))."""

    def __init__(self, channels, heads, attention):
        super().__init__()
        self.heads = heads
        if attention:
            self.norm1 = nn.LayerNorm(channels)
            self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(nn.Linear(channels, 4 * channels), GEGLU(), nn.Linear(2 * channels, channels))

    def forward(self, x, index):
        """x (R, M); index (R, K) key lists, or None to skip the attention."""
        if index is not None:
            h = self.norm1(x)[None]
            w_q, w_k, w_v = self.attn.in_proj_weight.chunk(3)
            b_q, b_k, b_v = self.attn.in_proj_bias.chunk(3)
            q, k, v = F.linear(h, w_q, b_q), F.linear(h, w_k, b_k), F.linear(h, w_v, b_v)
            context, _ = sparse_attention(q, k, v, index[None], self.heads)
            x = x + self.attn.out_proj(context)[0]
        return x + self.ff(self.norm2(x))


def key_lists(teacher, mask, variant, top_k):
    """teacher (O, T, k), mask (O, T). Returns (O T, K) int64 global token indices."""
    O, T, _ = teacher.shape
    rows = []
    if variant != "full":
        for o in range(O):
            others = [j * T + t for j in range(O) if j != o for t in range(T)]
            rows.extend([others] * T)
        return torch.tensor(rows, dtype=torch.int64)
    norm = teacher.norm(dim=-1, keepdim=True).clamp(min=COSINE_EPS)
    unit = (teacher / norm).numpy()
    occupied = mask.numpy() > 0.5
    for o in range(O):
        for t in range(T):
            row = []
            for j in range(O):
                if j == o:
                    continue
                cells = np.nonzero(occupied[j])[0]
                if len(cells) == 0:
                    cells = np.arange(T)
                similarity = unit[j, cells] @ unit[o, t]
                order = np.lexsort((cells, -similarity))  # highest first, then lower cell
                chosen = cells[order[:top_k]]
                row.extend(int(j * T + chosen[s % len(chosen)]) for s in range(top_k))
            rows.append(row)
    return torch.tensor(rows, dtype=torch.int64)


def near_ties(teacher, mask):
    """Returns True when two candidate similarities of an occupied query cell lie within TIE_MARGIN."""
    O, T, _ = teacher.shape
    unit = (teacher / teacher.norm(dim=-1, keepdim=True).clamp(min=COSINE_EPS)).numpy()
    occupied = mask.numpy() > 0.5
    for o in range(O):
        for t in range(T):
            if not occupied[o, t]:
                continue
            for j in range(O):
                cells = np.nonzero(occupied[j])[0]
                if j == o or len(cells) < 2:
                    continue
                similarity = np.sort(unit[j, cells] @ unit[o, t])
                if np.min(np.diff(similarity)) < TIE_MARGIN:
                    return True
    return False


class Matcher(nn.Module):
    def __init__(self, variant, trunk_channels, teacher_channels, cells, channels, heads, blocks, top_k):
        super().__init__()
        self.variant = variant
        self.trunk_channels = trunk_channels
        self.teacher_channels = teacher_channels
        self.cells = cells
        self.top_k = top_k
        self.embed = nn.Linear(trunk_channels + teacher_channels + 3, channels)
        self.blocks = nn.ModuleList(Block(channels, heads, variant != "A") for _ in range(blocks))
        self.norm = nn.LayerNorm(channels)
        size = (cells - 1) // 2 + 1
        size = (size - 1) // 2 + 1
        self.classifier = nn.Sequential(
            nn.Conv3d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv3d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(size ** 3 * channels, channels), nn.ReLU(), nn.Linear(channels, 1))

    def coordinates(self):
        """(T, 3): (i + 0.5) / n - 0.5 for the z, y, x index of each cell."""
        n = self.cells
        axis = (torch.arange(n, dtype=torch.float64) + 0.5) / n - 0.5
        z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
        return torch.stack([z, y, x], dim=-1).reshape(-1, 3)

    def index(self, crops, mask):
        O, n = crops.shape[0], self.cells
        if self.variant == "A" or O < 2:
            return None
        c0 = self.trunk_channels
        teacher = crops.detach()[..., c0:c0 + self.teacher_channels].reshape(O, n ** 3, -1)
        return key_lists(teacher, mask.reshape(O, n ** 3), self.variant, self.top_k)

    def forward(self, crops, mask):
        """crops (O, n, n, n, Cin), mask (O, n, n, n). Returns logits (O,) and the key lists."""
        O, n = crops.shape[0], self.cells
        T = n ** 3
        index = self.index(crops, mask)
        tokens = torch.cat([crops.reshape(O * T, -1), self.coordinates().repeat(O, 1).to(crops.dtype)], dim=1)
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, index)
        x = self.norm(x) * mask.reshape(O * T, 1)
        x = x.reshape(O, n, n, n, -1).permute(0, 4, 1, 2, 3)
        return self.classifier(x).reshape(O), index


def weighted_bce(logits, labels):
    targets = labels.to(logits.dtype)
    weights = targets * ANOMALY_WEIGHT + (1 - targets) * NORMAL_WEIGHT
    return (weights * F.binary_cross_entropy_with_logits(logits, targets, reduction="none")).mean()


def make_inputs(generator):
    """Crops and mask without near-ties in the similarities."""
    Cin = TRUNK_CHANNELS + TEACHER_CHANNELS
    T = CELLS ** 3
    while True:
        mask = torch.zeros(OBJECTS, T, dtype=torch.float64)
        mask[0] = (torch.rand(T, generator=generator) < 0.6).double()
        mask[1] = (torch.rand(T, generator=generator) < 0.5).double()
        mask[2, torch.randperm(T, generator=generator)[:2]] = 1.0
        crops = torch.randn(OBJECTS, T, Cin, generator=generator, dtype=torch.float64) * mask[..., None]
        teacher = crops[..., TRUNK_CHANNELS:]
        if not near_ties(teacher, mask):
            shape = (OBJECTS, CELLS, CELLS, CELLS)
            return crops.reshape(*shape, Cin), mask.reshape(shape)


def generate_variant(out_dir, variant, crops, mask, labels):
    torch.manual_seed(11)
    model = Matcher(variant, TRUNK_CHANNELS, TEACHER_CHANNELS, CELLS, CHANNELS, HEADS, BLOCKS, TOP_K).double()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.copy_(torch.rand_like(parameter) + 0.5)
            elif ("norm" in name or "attn" in name) and name.endswith("bias"):
                parameter.copy_(torch.randn_like(parameter) * 0.1)
    tensors = {name: value.clone() for name, value in model.state_dict().items()}

    crops = crops.clone().requires_grad_()
    logits, index = model(crops, mask)
    logits.retain_grad()
    loss = weighted_bce(logits, labels)
    loss.backward()

    tensors.update({"crops": crops.detach(), "mask": mask, "labels": labels.to(torch.uint8),
                    "logits": logits.detach(), "loss": loss.detach().reshape(1),
                    "d_logits": logits.grad, "grad.crops": crops.grad})
    for name, parameter in model.named_parameters():
        tensors["grad." + name] = parameter.grad
    if variant == "full":
        tensors["index"] = index.to(torch.int32)
    tensors["config"] = torch.tensor([OBJECTS, CELLS, TRUNK_CHANNELS, TEACHER_CHANNELS, CHANNELS, HEADS,
                                      BLOCKS, TOP_K], dtype=torch.int64)
    st.save(os.path.join(out_dir, f"matcher_{variant}.safetensors"), tensors,
            {"producer": "scripts/refs/matcher.py", "variant": variant})


def generate(out_dir):
    generator = torch.Generator().manual_seed(5)
    crops, mask = make_inputs(generator)
    labels = torch.tensor([0, 1, 0])
    for variant in ("full", "A", "B"):
        generate_variant(out_dir, variant, crops, mask, labels)
