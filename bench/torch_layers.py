#!/usr/bin/env python3
"""PyTorch peer of bench_layers.c: the same layers, sizes and names.

"_fwd" runs the forward under torch.no_grad(); "_fwdbwd" runs the forward
with autograd and torch.autograd.grad for every input and parameter that
the C backward computes. Where PyTorch's speed depends on the memory
layout, the peer uses PyTorch's faster layout on this machine (measured
with torch 1.13 on 2 threads), so the comparison is against PyTorch at its
best: batch norm on a (rows, C) matrix, group norm on contiguous
(N, C, D, H, W), pooling as stated at its case.
"""
import torch
import torch.nn.functional as F

from torch_common import median_ms, report, setup

VOLUME_ROWS = 65536  # 16 x 64 x 64 voxels
TOKENS = 3584        # 7 objects x 512 tokens
TOKEN_WIDTH = 256
FEED_FORWARD_WIDTH = 1024
SOFTMAX_ROWS = 8 * TOKENS
SOFTMAX_KEYS = 120
NORM_GROUPS = 8
LEAKY_SLOPE = 0.01
EPS = 1e-5
REPEATS = 20


def run(name, forward, inputs, fwd_flops=0):
    """Time forward(*inputs) alone and with the gradient of every input."""
    def fwd():
        with torch.no_grad():
            forward(*inputs)

    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    d_out = torch.randn_like(forward(*leaves))

    def fwdbwd():
        out = forward(*leaves)
        torch.autograd.grad(out, leaves, d_out)

    report(f"{name}_fwd", median_ms(fwd, repeats=REPEATS), fwd_flops)
    report(f"{name}_fwdbwd", median_ms(fwdbwd, repeats=REPEATS), 3 * fwd_flops)


def main():
    setup()

    for channels in (16, 32):
        x = torch.randn(VOLUME_ROWS, channels)
        gamma, beta = torch.randn(channels), torch.randn(channels)
        run(f"relu_{VOLUME_ROWS}x{channels}", F.relu, [x])
        run(f"leaky_relu_{VOLUME_ROWS}x{channels}", lambda t: F.leaky_relu(t, LEAKY_SLOPE), [x])
        run(f"batchnorm_{VOLUME_ROWS}x{channels}",
            lambda t, g, b: F.batch_norm(t, None, None, g, b, training=True, eps=EPS),
            [x, gamma, beta])
        volume = torch.randn(1, channels, 16, 64, 64)
        run(f"groupnorm{NORM_GROUPS}_{VOLUME_ROWS}x{channels}",
            lambda t, g, b: F.group_norm(t, NORM_GROUPS, g, b, eps=EPS), [volume, gamma, beta])

    for out_features in (TOKEN_WIDTH, FEED_FORWARD_WIDTH):
        x = torch.randn(TOKENS, TOKEN_WIDTH)
        weight = torch.randn(out_features, TOKEN_WIDTH) * 0.05
        bias = torch.randn(out_features)
        run(f"linear_{TOKENS}x{TOKEN_WIDTH}to{out_features}", F.linear, [x, weight, bias],
            2.0 * TOKENS * TOKEN_WIDTH * out_features)

    x = torch.randn(TOKENS, TOKEN_WIDTH)
    run(f"layernorm_{TOKENS}x{TOKEN_WIDTH}",
        lambda t, g, b: F.layer_norm(t, (TOKEN_WIDTH,), g, b, eps=EPS),
        [x, torch.randn(TOKEN_WIDTH), torch.randn(TOKEN_WIDTH)])

    def geglu(t):
        value, gate = t.chunk(2, dim=-1)
        return value * F.gelu(gate)

    x = torch.randn(TOKENS, FEED_FORWARD_WIDTH)
    run(f"geglu_{TOKENS}x{FEED_FORWARD_WIDTH}to{FEED_FORWARD_WIDTH // 2}", geglu, [x])
    run(f"gelu_{TOKENS}x{FEED_FORWARD_WIDTH}", F.gelu, [x])

    run(f"softmax_{SOFTMAX_ROWS}x{SOFTMAX_KEYS}", lambda t: F.softmax(t, dim=-1),
        [torch.randn(SOFTMAX_ROWS, SOFTMAX_KEYS)])

    # Channels-last (N, H, W, C) as the C code stores it; PyTorch has a
    # dedicated channels-last kernel for it.
    pooled = torch.randn(1, 32, 64, 64).contiguous(memory_format=torch.channels_last)
    run("avgpool2d_64x64x32_k2", lambda t: F.avg_pool2d(t, 2, 2), [pooled])


if __name__ == "__main__":
    main()
