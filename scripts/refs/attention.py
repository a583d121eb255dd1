"""Reference values for multi-head attention (src/nn/attention.c).

Dense kernel: scaled dot-product attention over channels-last (B, T, H*Dh)
sequences, computed in float64. Sparse kernel: each query attends to the
keys its index row lists, by gathering those keys (gather semantics: a key
listed twice is two softmax terms). Layers: torch.nn.MultiheadAttention
(batch_first=True) in float64 for dense attention, and the same weights with
the gathering attention for sparse attention.

Every file contains the inputs, a random upstream gradient d_out, the output,
the saved probabilities (B, H, Tq, Tk or K) and the gradients of
sum(out * d_out) with respect to every input and weight.
"""
import os

import torch
import torch.nn.functional as F

from refs import st


def _heads(x, H):
    """(B, T, H*Dh) -> (B, H, T, Dh)"""
    B, T, C = x.shape
    return x.reshape(B, T, H, C // H).permute(0, 2, 1, 3)


def dense_attention(q, k, v, H):
    """Returns out (B, Tq, C) and probs (B, H, Tq, Tk)."""
    Dh = q.shape[2] // H
    qh, kh, vh = _heads(q, H), _heads(k, H), _heads(v, H)
    probs = torch.softmax(qh @ kh.transpose(-1, -2) / Dh ** 0.5, dim=-1)
    out = (probs @ vh).permute(0, 2, 1, 3).reshape(q.shape)
    return out, probs


def sparse_attention(q, k, v, index, H):
    """index (B, Tq, K) int64. Returns out (B, Tq, C) and probs (B, H, Tq, K)."""
    B, Tq, C = q.shape
    K = index.shape[2]
    Dh = C // H
    batch = torch.arange(B).reshape(B, 1, 1)
    k_listed = k[batch, index].reshape(B, Tq, K, H, Dh)  # (B, Tq, K, H, Dh)
    v_listed = v[batch, index].reshape(B, Tq, K, H, Dh)
    qh = q.reshape(B, Tq, H, Dh)
    scores = torch.einsum("bqhd,bqkhd->bhqk", qh, k_listed) / Dh ** 0.5
    probs = torch.softmax(scores, dim=-1)
    out = torch.einsum("bhqk,bqkhd->bqhd", probs, v_listed).reshape(B, Tq, C)
    return out, probs


def _leaf(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_()


def _kernel_case(path, B, Tq, Tk, H, Dh, index=None):
    C = H * Dh
    q, k, v = _leaf(B, Tq, C), _leaf(B, Tk, C), _leaf(B, Tk, C)
    if index is None:
        out, probs = dense_attention(q, k, v, H)
    else:
        out, probs = sparse_attention(q, k, v, index, H)
    d_out = torch.randn_like(out)
    (out * d_out).sum().backward()
    tensors = {"q": q, "k": k, "v": v, "out": out, "probs": probs, "d_out": d_out,
               "d_q": q.grad, "d_k": k.grad, "d_v": v.grad}
    if index is not None:
        tensors["index"] = index.to(torch.int32)
    st.save(path, tensors, {"B": B, "Tq": Tq, "Tk": Tk, "H": H, "Dh": Dh,
                            "K": 0 if index is None else index.shape[2]})


def _random_index(B, Tq, Tk, K, duplicates):
    """Random key lists; with duplicates, some rows list one key twice."""
    index = torch.randint(0, Tk, (B, Tq, K))
    if duplicates and K >= 2:
        index[:, ::2, 1] = index[:, ::2, 0]
    return index


def _projections(mha, query, key, value):
    """Return the query, key and value projections of a MultiheadAttention layer."""
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    return F.linear(query, w_q, b_q), F.linear(key, w_k, b_k), F.linear(value, w_v, b_v)


def _layer_case(path, B, Tq, Tk, C, H, index=None, self_attention=False):
    mha = torch.nn.MultiheadAttention(C, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        # Non-zero biases, so that their gradients and their use are tested.
        mha.in_proj_bias.normal_(0.0, 0.1)
        mha.out_proj.bias.normal_(0.0, 0.1)
    query = _leaf(B, Tq, C)
    key = query if self_attention else _leaf(B, Tk, C)
    value = query if self_attention else _leaf(B, Tk, C)

    if index is None:
        out, probs = mha(query, key, value, need_weights=True, average_attn_weights=False)
        # Cross-check the hand-written dense reference against PyTorch's layer.
        context, probs_check = dense_attention(*_projections(mha, query, key, value), H)
        assert torch.allclose(out, mha.out_proj(context), atol=1e-12), "dense reference disagrees with MHA"
        assert torch.allclose(probs, probs_check, atol=1e-12)
    else:
        context, probs = sparse_attention(*_projections(mha, query, key, value), index, H)
        out = mha.out_proj(context)

    d_out = torch.randn_like(out)
    (out * d_out).sum().backward()
    tensors = {"query": query, "out": out, "probs": probs, "d_out": d_out,
               "d_query": query.grad,
               "in_proj_weight": mha.in_proj_weight, "in_proj_bias": mha.in_proj_bias,
               "out_proj_weight": mha.out_proj.weight, "out_proj_bias": mha.out_proj.bias,
               "d_in_proj_weight": mha.in_proj_weight.grad,
               "d_in_proj_bias": mha.in_proj_bias.grad,
               "d_out_proj_weight": mha.out_proj.weight.grad,
               "d_out_proj_bias": mha.out_proj.bias.grad}
    if not self_attention:
        tensors.update({"key": key, "value": value, "d_key": key.grad, "d_value": value.grad})
    if index is not None:
        tensors["index"] = index.to(torch.int32)
    st.save(path, tensors, {"B": B, "Tq": Tq, "Tk": Tk, "C": C, "H": H,
                            "K": 0 if index is None else index.shape[2],
                            "self_attention": int(self_attention)})


def _check_sparse_equals_dense():
    """With every key listed once, in order, sparse attention is dense attention."""
    q, k, v = (torch.randn(2, 5, 6, dtype=torch.float64) for _ in range(3))
    index = torch.arange(5).expand(2, 5, 5)
    out_sparse, probs_sparse = sparse_attention(q, k, v, index, 2)
    out_dense, probs_dense = dense_attention(q, k, v, 2)
    assert torch.allclose(out_sparse, out_dense, atol=1e-12)
    assert torch.allclose(probs_sparse, probs_dense, atol=1e-12)


def generate(out_dir):
    _check_sparse_equals_dense()
    path = lambda name: os.path.join(out_dir, f"attention_{name}.safetensors")  # noqa: E731

    # Dense kernel: Tq != Tk with 3 heads of 5; one head and B = 1; the
    # matcher's head width 32 with 4 heads.
    _kernel_case(path("dense_3x5"), B=2, Tq=7, Tk=11, H=3, Dh=5)
    _kernel_case(path("dense_1head"), B=1, Tq=6, Tk=9, H=1, Dh=8)
    _kernel_case(path("dense_4x32"), B=1, Tq=40, Tk=48, H=4, Dh=32)

    # Sparse kernel: repeated keys within a row; K = 1; the head width 32.
    _kernel_case(path("sparse_3x5"), B=2, Tq=7, Tk=11, H=3, Dh=5,
                 index=_random_index(2, 7, 11, 4, duplicates=True))
    _kernel_case(path("sparse_k1"), B=1, Tq=6, Tk=9, H=1, Dh=8,
                 index=_random_index(1, 6, 9, 1, duplicates=False))
    _kernel_case(path("sparse_4x32"), B=1, Tq=40, Tk=48, H=4, Dh=32,
                 index=_random_index(1, 40, 48, 24, duplicates=True))

    # Layers: dense cross-attention with separate query, key and value;
    # sparse self-attention (one input for all three).
    _layer_case(path("layer_dense"), B=2, Tq=6, Tk=10, C=15, H=3)
    _layer_case(path("layer_dense_1head"), B=1, Tq=5, Tk=5, C=8, H=1, self_attention=True)
    _layer_case(path("layer_sparse"), B=2, Tq=9, Tk=9, C=16, H=2,
                index=_random_index(2, 9, 9, 5, duplicates=True), self_attention=True)
    _layer_case(path("layer_sparse_cross"), B=1, Tq=7, Tk=12, C=15, H=3,
                index=_random_index(1, 7, 12, 3, duplicates=False))
