#!/usr/bin/env python3
"""Regenerates the reference values that the C tests compare against.

Each module in scripts/refs/ (other than st.py) defines generate(out_dir),
which computes inputs, outputs and gradients with PyTorch (Debian's
python3-torch) or scikit-learn and writes small safetensors files into
tests/ref/. Seeds are fixed, so a rerun rewrites the same values.

Usage: scripts/make_references.py [MODULE ...]   (default: all modules)
"""
import importlib
import os
import pkgutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import torch  # noqa: E402

import refs  # noqa: E402


def main(argv):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_dir = os.path.join(ROOT, "tests", "ref")
    available = sorted(m.name for m in pkgutil.iter_modules(refs.__path__) if m.name != "st")
    chosen = argv or available
    for name in chosen:
        if name not in available:
            sys.exit(f"make_references: unknown module {name!r}; available: {', '.join(available)}")
        module = importlib.import_module(f"refs.{name}")
        torch.manual_seed(0)
        module.generate(out_dir)
        print(f"make_references: {name} done", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
