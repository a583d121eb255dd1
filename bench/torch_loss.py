"""PyTorch peer of bench/bench_loss.c: the same losses (forward + backward
through autograd) and one torch.optim.Adam step at the same sizes.

Adam is timed with foreach=False and foreach=True; "adam_step_2M" is the
faster of the two, and both are also printed under their own names."""
import torch
import torch.nn.functional as F

import torch_common

VIEWS = 5
BCE_CALLS_PER_BODY = 100


def bench_cosine(channels):
    pred = torch.randn(VIEWS * 32 * 32, channels, requires_grad=True)
    target = torch.randn(VIEWS * 32 * 32, channels)

    def body():
        pred.grad = None
        loss = (1 - F.cosine_similarity(pred, target, dim=1, eps=1e-8)).mean()
        loss.backward()

    torch_common.report(f"loss_cosine_5120x{channels}", torch_common.median_ms(body, 5, 31))


def bench_mse():
    rows = VIEWS * 128 * 128
    pred = torch.rand(rows, 3, requires_grad=True)
    target = torch.rand(rows, 3)
    weight = torch.where(torch.rand(rows) < 0.3, torch.ones(rows), torch.full((rows,), 0.1))

    def plain():
        pred.grad = None
        F.mse_loss(pred, target).backward()

    def weighted():
        pred.grad = None
        (((pred - target) ** 2) * weight[:, None]).mean().backward()

    torch_common.report("loss_mse_5x128x128x3", torch_common.median_ms(plain, 5, 31))
    torch_common.report("loss_mse_weighted_5x128x128x3", torch_common.median_ms(weighted, 5, 31))


def bench_bce():
    logits = torch.randn(64, requires_grad=True)
    targets = (torch.rand(64) < 0.3).float()
    weight = targets * 0.7 + (1 - targets) * 0.3

    def body():
        for _ in range(BCE_CALLS_PER_BODY):
            logits.grad = None
            F.binary_cross_entropy_with_logits(logits, targets, weight=weight).backward()

    torch_common.report("loss_bce_64", torch_common.median_ms(body, 3, 21) / BCE_CALLS_PER_BODY)


def bench_adam():
    counts = [1 << (20 - t) for t in range(21)] + [1]
    params = [torch.randn(count, requires_grad=True) for count in counts]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    total = sum(counts)
    best = None
    for foreach in (False, True):
        groups = [{"params": params[0::2], "lr": 1e-5}, {"params": params[1::2], "lr": 2e-5}]
        optimizer = torch.optim.Adam(groups, betas=(0.0, 0.999), eps=1e-8, foreach=foreach)
        ms = torch_common.median_ms(optimizer.step, 3, 21)
        torch_common.report(f"adam_step_2M_{'foreach' if foreach else 'single'}", ms, 12 * total)
        best = ms if best is None else min(best, ms)
    torch_common.report("adam_step_2M", best, 12 * total)
    torch_common.report("clip_grad_norm_2M",
                        torch_common.median_ms(lambda: torch.nn.utils.clip_grad_norm_(params, 1e9), 3, 21),
                        2 * total)


def main():
    torch_common.setup()
    bench_cosine(64)
    bench_cosine(384)
    bench_mse()
    bench_bce()
    with torch.no_grad():
        bench_adam()


if __name__ == "__main__":
    main()
