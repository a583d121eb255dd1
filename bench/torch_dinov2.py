"""PyTorch peer of bench/bench_dinov2.c (same names and sizes).

DINOv2 ViT-S/14 (12 layers, hidden 384, 6 heads of 64, MLP 1536, a 37 x 37
position table) with random weights in float32. The structure is that of
transformers' Dinov2Model: a stride-14 patch convolution, the CLS token,
the position table interpolated bicubically to the grid, pre-norm blocks
with layer scale and a final layer norm. Attention is written out as matrix products and
softmax, because torch 1.13 has no scaled_dot_product_attention, and on
Debian's torch 1.13 this is faster than nn.MultiheadAttention (14 ms
against 34 ms for one 257-token layer on 2 threads).
"""
import math

import torch
import torch.nn.functional as F

import torch_common

HIDDEN = 384
HEADS = 6
LAYERS = 12
MLP_HIDDEN = 1536
PATCH = 14
TABLE_SIDE = 37
EPS = 1e-6
MEAN = torch.tensor((0.485, 0.456, 0.406))
STD = torch.tensor((0.229, 0.224, 0.225))


def random_weights():
    def normal(*shape, scale=1.0, offset=0.0):
        return offset + scale * torch.randn(*shape)

    C, M = HIDDEN, MLP_HIDDEN
    weights = {
        "cls": normal(1, 1, C),
        "position": normal(1, 1 + TABLE_SIDE ** 2, C),
        "patch_weight": normal(C, 3, PATCH, PATCH, scale=0.04),
        "patch_bias": normal(C, scale=0.1),
        "norm_weight": normal(C, scale=0.1, offset=1.0),
        "norm_bias": normal(C, scale=0.1),
        "layers": [],
    }
    for _ in range(LAYERS):
        weights["layers"].append({
            "norm1": (normal(C, scale=0.1, offset=1.0), normal(C, scale=0.1)),
            "qkv": (normal(3 * C, C, scale=0.05), normal(3 * C, scale=0.1)),
            "dense": (normal(C, C, scale=0.05), normal(C, scale=0.1)),
            "lambda1": normal(C, scale=0.1, offset=0.5),
            "norm2": (normal(C, scale=0.1, offset=1.0), normal(C, scale=0.1)),
            "fc1": (normal(M, C, scale=0.05), normal(M, scale=0.1)),
            "fc2": (normal(C, M, scale=0.025), normal(C, scale=0.1)),
            "lambda2": normal(C, scale=0.1, offset=0.5),
        })
    return weights


def position_embeddings(table, grid_h, grid_w):
    """transformers 4.38's interpolate_pos_encoding, as in scripts/refs/dinov2.py."""
    if grid_h == grid_w == TABLE_SIDE:
        return table
    patch = table[:, 1:].reshape(1, TABLE_SIDE, TABLE_SIDE, HIDDEN).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((grid_h + 0.1) / TABLE_SIDE, (grid_w + 0.1) / TABLE_SIDE),
                          mode="bicubic", align_corners=False)
    patch = patch.permute(0, 2, 3, 1).reshape(1, -1, HIDDEN)
    return torch.cat((table[:, :1], patch), dim=1)


def forward(weights, image):
    """image (H, W, 3) in [0, 1] -> patch tokens (H/14, W/14, C)."""
    H, W, _ = image.shape
    pixels = ((image - MEAN) / STD).permute(2, 0, 1).unsqueeze(0)
    x = F.conv2d(pixels, weights["patch_weight"], weights["patch_bias"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat((weights["cls"], x), dim=1)
    x = x + position_embeddings(weights["position"], H // PATCH, W // PATCH)
    T, Dh = x.shape[1], HIDDEN // HEADS
    for layer in weights["layers"]:
        h = F.layer_norm(x, (HIDDEN,), *layer["norm1"], eps=EPS)
        q, k, v = F.linear(h, *layer["qkv"]).reshape(T, 3, HEADS, Dh).permute(1, 2, 0, 3)
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(Dh), dim=-1)
        context = (probs @ v).transpose(0, 1).reshape(1, T, HIDDEN)
        x = x + layer["lambda1"] * F.linear(context, *layer["dense"])
        h = F.layer_norm(x, (HIDDEN,), *layer["norm2"], eps=EPS)
        h = F.linear(F.gelu(F.linear(h, *layer["fc1"])), *layer["fc2"])
        x = x + layer["lambda2"] * h
    x = F.layer_norm(x, (HIDDEN,), weights["norm_weight"], weights["norm_bias"], eps=EPS)
    return x[0, 1:].reshape(H // PATCH, W // PATCH, HIDDEN)


def forward_flops(size):
    G = (size // PATCH) ** 2
    T, C, M = G + 1, HIDDEN, MLP_HIDDEN
    return 2 * G * 3 * PATCH * PATCH * C + LAYERS * (2 * T * (4 * C * C + 2 * C * M) + 4 * T * T * C)


def main():
    torch_common.setup()
    weights = random_weights()
    for size in (224, 448):
        image = torch.rand(size, size, 3)
        with torch.no_grad():
            ms = torch_common.median_ms(lambda: forward(weights, image), warmup=2,
                                        repeats=10 if size == 224 else 5)
        torch_common.report(f"dinov2_vits14_forward_{size}", ms, forward_flops(size))


if __name__ == "__main__":
    main()
