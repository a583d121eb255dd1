"""PyTorch peer of bench/bench_attention.c (same names and sizes).

Sparse attention has two PyTorch forms, and each name reports the faster.
One gathers the listed keys of every query, which makes (T, K, C) copies
of the keys and values. The other runs dense attention over all T keys
with an additive mask that is -inf outside the listed keys. Dense attention within each
object uses torch.nn.MultiheadAttention and, for the kernel alone, the same
head-split matrix products that the layer runs.
"""
import sys

import torch
import torch.nn.functional as F

import torch_common

OBJECTS = 7
VOXELS_PER_OBJECT = 512
CHANNELS = 256
HEADS = 8
MATCHES_PER_OBJECT = 20
KEYS_PER_QUERY = MATCHES_PER_OBJECT * (OBJECTS - 1)


def matcher_index():
    """(T, K): MATCHES_PER_OBJECT distinct random voxels of each other object."""
    T = OBJECTS * VOXELS_PER_OBJECT
    index = torch.empty(T, KEYS_PER_QUERY, dtype=torch.int64)
    for query in range(T):
        obj = query // VOXELS_PER_OBJECT
        parts = [other * VOXELS_PER_OBJECT + torch.randperm(VOXELS_PER_OBJECT)[:MATCHES_PER_OBJECT]
                 for other in range(OBJECTS) if other != obj]
        index[query] = torch.cat(parts)
    return index


def heads(x):
    """(B, T, C) -> (B * H, T, Dh), the layout MultiheadAttention multiplies in."""
    B, T, C = x.shape
    return x.reshape(B, T, HEADS, C // HEADS).transpose(1, 2).reshape(B * HEADS, T, C // HEADS)


def merge_heads(x, B):
    """(B * H, T, Dh) -> (B, T, C)"""
    _, T, Dh = x.shape
    return x.reshape(B, HEADS, T, Dh).transpose(1, 2).reshape(B, T, HEADS * Dh)


def dense_attention(q, k, v, mask=None):
    """Scaled dot-product attention as MultiheadAttention computes it; mask
    (Tq, Tk) is added to the scores."""
    B, _, C = q.shape
    scale = (C // HEADS) ** -0.5
    kt = heads(k).transpose(1, 2)
    if mask is None:
        scores = torch.bmm(heads(q), kt) * scale
    else:
        scores = torch.baddbmm(mask, heads(q), kt, alpha=scale)
    return merge_heads(torch.bmm(torch.softmax(scores, dim=-1), heads(v)), B)


def gather_attention(q, k, v, index):
    """q, k, v (1, T, C); index (T, K)."""
    _, T, C = q.shape
    Dh = C // HEADS
    k_listed = k[0, index].reshape(T, -1, HEADS, Dh)
    v_listed = v[0, index].reshape(T, -1, HEADS, Dh)
    scores = torch.einsum("thd,tkhd->thk", q[0].reshape(T, HEADS, Dh), k_listed) / Dh ** 0.5
    probs = torch.softmax(scores, dim=-1)
    return torch.einsum("thk,tkhd->thd", probs, v_listed).reshape(1, T, C)


def projected(layer, query, key, value):
    w_q, w_k, w_v = layer.in_proj_weight.chunk(3)
    b_q, b_k, b_v = layer.in_proj_bias.chunk(3)
    return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)


def timed(name, variants, flops, warmup=2, repeats=10):
    """Times each (label, body) and reports the fastest under name."""
    best = None
    for label, body in variants:
        ms = torch_common.median_ms(body, warmup=warmup, repeats=repeats)
        print(f"torch_attention: {name} {label}: {ms:.2f} ms", file=sys.stderr)
        best = ms if best is None else min(best, ms)
    torch_common.report(name, best, flops)


def forward_backward(forward, inputs, d_out):
    for x in inputs:
        x.grad = None
    forward().backward(d_out)


def main():
    torch_common.setup()
    T = OBJECTS * VOXELS_PER_OBJECT
    C = CHANNELS
    K = KEYS_PER_QUERY

    # Sparse: one sequence of every object's voxels.
    index = matcher_index()
    mask = torch.full((T, T), float("-inf"))
    mask.scatter_(1, index, 0.0)
    query, key, value, d_out = (torch.randn(1, T, C) for _ in range(4))
    inputs = [x.requires_grad_() for x in (query, key, value)]
    pairs = T * K

    def sparse_gather():
        return gather_attention(query, key, value, index)

    def sparse_masked():
        return dense_attention(query, key, value, mask)

    # Each sparse call takes from 0.3 to 4 s in PyTorch: fewer repeats.
    with torch.no_grad():
        timed("attention_sparse_fwd", [("gather", sparse_gather), ("masked dense", sparse_masked)],
              4 * pairs * C, warmup=1, repeats=5)
    timed("attention_sparse_fwdbwd",
          [("gather", lambda: forward_backward(sparse_gather, inputs, d_out)),
           ("masked dense", lambda: forward_backward(sparse_masked, inputs, d_out))],
          12 * pairs * C, warmup=1, repeats=5)

    layer = torch.nn.MultiheadAttention(C, HEADS, batch_first=True)

    def layer_gather():
        return layer.out_proj(gather_attention(*projected(layer, query, key, value), index))

    def layer_masked():
        return layer(query, key, value, attn_mask=mask, need_weights=False)[0]

    projections = 8 * T * C * C
    with torch.no_grad():
        timed("mha_sparse_fwd", [("gather", layer_gather), ("masked dense", layer_masked)],
              4 * pairs * C + projections, warmup=1, repeats=5)
    timed("mha_sparse_fwdbwd",
          [("gather", lambda: forward_backward(layer_gather, inputs, d_out)),
           ("masked dense", lambda: forward_backward(layer_masked, inputs, d_out))],
          12 * pairs * C + 3 * projections, warmup=1, repeats=5)
    del mask

    # Dense: each object attends within itself.
    B, T = OBJECTS, VOXELS_PER_OBJECT
    query, key, value, d_out = (torch.randn(B, T, C) for _ in range(4))
    inputs = [x.requires_grad_() for x in (query, key, value)]
    pairs = B * T * T

    def dense():
        return dense_attention(query, key, value)

    def layer_dense():
        return layer(query, key, value, need_weights=False)[0]

    with torch.no_grad():
        timed("attention_dense_fwd", [("matmul", dense)], 4 * pairs * C)
    timed("attention_dense_fwdbwd", [("matmul", lambda: forward_backward(dense, inputs, d_out))],
          12 * pairs * C)
    with torch.no_grad():
        timed("mha_dense_fwd", [("MultiheadAttention", layer_dense)], 4 * pairs * C + projections)
    timed("mha_dense_fwdbwd",
          [("MultiheadAttention", lambda: forward_backward(layer_dense, inputs, d_out))],
          12 * pairs * C + 3 * projections)


if __name__ == "__main__":
    main()
