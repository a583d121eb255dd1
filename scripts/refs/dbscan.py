"""Reference labels for DBSCAN on voxels (src/geometry/dbscan.c).

scikit-learn's sklearn.cluster.DBSCAN (1.2, Euclidean, algorithm "brute"
so no tree changes the neighbourhoods) labels random integer voxel sets.
Each file tests/ref/dbscan_<case>.safetensors holds:
  voxels (N, 3) int32 as (x, y, z);
  labels (N,) int32, scikit-learn's labels, -1 for noise;
  core (N,) uint8, 1 for scikit-learn's core samples;
  params (2,) float32: eps and min_samples.
The C test compares core and noise sets exactly and the partition of the
core points up to relabelling. Border points may legitimately differ:
scikit-learn gives them to the first cluster that reaches them.
"""
import os

import numpy as np
from sklearn.cluster import DBSCAN

from refs import st


def _uniform(rng, shape, density):
    """Voxels of a (x, y, z) grid of the given shape, each occupied with
    probability density."""
    occupied = rng.random(shape) < density
    return np.argwhere(occupied).astype(np.int32)


def _blobs(rng, centres, spread, points_per_blob, noise, extent):
    """Rounded Gaussian blobs plus uniform noise; duplicates kept, because
    the C code must count them as scikit-learn does."""
    parts = [np.round(rng.normal(c, spread, size=(points_per_blob, 3))) for c in centres]
    parts.append(rng.integers(0, extent, size=(noise, 3)))
    return np.concatenate(parts).astype(np.int32)


def _cases(rng):
    return {
        # sparse uniform voxels, 26-neighbourhood-like radius
        "uniform": (_uniform(rng, (24, 20, 9), 0.18), 1.5, 5),
        # 6-neighbourhood (eps 1), many small clusters
        "faces": (_uniform(rng, (17, 23, 6), 0.45), 1.0, 3),
        # Gaussian blobs that touch, duplicates and noise, larger radius
        "blobs": (_blobs(rng, [(8, 8, 4), (20, 10, 5), (14, 22, 3)], 2.5, 400, 150, (30, 30, 10)),
                  2.0, 12),
        # negative coordinates and min_samples 1: every point is core
        "negative": (_uniform(rng, (10, 12, 5), 0.1) - np.array([5, 30, 2], dtype=np.int32), 1.5, 1),
        # too sparse for any core point: all noise
        "noise": (_uniform(rng, (20, 20, 5), 0.05), 1.5, 9),
    }


def generate(out_dir):
    rng = np.random.default_rng(6)
    for name, (voxels, eps, min_samples) in _cases(rng).items():
        rng.shuffle(voxels, axis=0)
        model = DBSCAN(eps=eps, min_samples=min_samples, algorithm="brute").fit(voxels.astype(np.float64))
        core = np.zeros(len(voxels), dtype=np.uint8)
        core[model.core_sample_indices_] = 1
        labels = model.labels_.astype(np.int32)
        assert name != "noise" or (labels == -1).all()
        st.save(os.path.join(out_dir, f"dbscan_{name}.safetensors"),
                {"voxels": voxels, "labels": labels, "core": core,
                 "params": np.array([eps, min_samples], dtype=np.float32)},
                {"producer": "make_references.py", "sklearn_clusters": int(labels.max() + 1)})
