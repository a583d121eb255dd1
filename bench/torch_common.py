"""Timing for the PyTorch peers of the C benchmarks (same line format)."""
import os
import statistics
import sys
import time

import torch


def setup():
    """Use the thread count that OMP_NUM_THREADS gives the C side."""
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return threads


def median_ms(body, warmup=3, repeats=10):
    for _ in range(warmup):
        body()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def report(name, ms, flops=0):
    print(f"BENCH\t{name}\t{ms:.4f}\t{flops:.0f}")
    sys.stdout.flush()
