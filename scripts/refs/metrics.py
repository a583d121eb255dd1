"""Reference values for src/eval/metrics.c from scikit-learn 1.2.

roc_auc_score, roc_curve(drop_intermediate=False) and accuracy_score run in
float64 on float32-rounded scores, as the C code receives them. st.save stores
floating tensors as float32, which would round the AUROC, so float64
results are stored as their raw little-endian bytes (U8 tensors named
"*_f64"); the C test reinterprets them.

Each case file holds: scores (n), labels (n), auroc_defined (1),
auroc_f64, fpr_f64, tpr_f64, thresholds_f64, threshold (1) and
accuracy_f64. The scene file adds scene_offsets and the pooled and
scene-averaged AUROC with the number of scenes skipped; the percentile
file holds numpy.percentile's linear percentiles of sorted values.
"""
import os

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from refs import st


def _f64(values):
    return np.ascontiguousarray(np.asarray(values, dtype="<f8").reshape(-1)).view(np.uint8)


def _case(scores, labels, threshold):
    scores = np.asarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.uint8)
    x = scores.astype(np.float64)
    out = {"scores": scores, "labels": labels, "threshold": np.array([threshold], np.float32)}
    both = labels.min() != labels.max()
    out["auroc_defined"] = np.array([1 if both else 0], np.uint8)
    if both:
        out["auroc_f64"] = _f64(roc_auc_score(labels, x))
        fpr, tpr, thresholds = roc_curve(labels, x, drop_intermediate=False)
        out["fpr_f64"] = _f64(fpr)
        out["tpr_f64"] = _f64(tpr)
        out["thresholds_f64"] = _f64(thresholds)
    else:
        out["auroc_f64"] = _f64(0.0)
    predicted = (scores > np.float32(threshold)).astype(np.uint8)
    out["accuracy_f64"] = _f64(accuracy_score(labels, predicted))
    return out


def _scenes(rng, out_dir):
    """Forty scenes of 1 to 7 objects; some contain one class only."""
    sizes = rng.integers(1, 8, size=40)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])
    scores = np.round(rng.normal(size=n), 1).astype(np.float32)
    labels = (rng.random(n) < 0.3).astype(np.uint8)
    labels[offsets[:-1]] = 0  # every scene starts with a normal object
    x = scores.astype(np.float64)
    per_scene = []
    skipped = 0
    for s in range(len(sizes)):
        y = labels[offsets[s]:offsets[s + 1]]
        if y.min() == y.max():
            skipped += 1
            continue
        per_scene.append(roc_auc_score(y, x[offsets[s]:offsets[s + 1]]))
    tensors = {
        "scores": scores,
        "labels": labels,
        "scene_offsets": offsets,
        "pooled_f64": _f64(roc_auc_score(labels, x)),
        "scene_mean_f64": _f64(np.mean(per_scene)),
        "scenes_skipped": np.array([skipped], np.int64),
    }
    st.save(os.path.join(out_dir, "metrics_scenes.safetensors"), tensors)


def generate(out_dir):
    rng = np.random.default_rng(6)
    cases = {}

    # Scores on a coarse grid, so that many of them tie across classes.
    n = 500
    cases["ties"] = _case(np.round(rng.random(n) * 20) / 20, rng.random(n) < 0.4, 0.5)

    # Probabilities with distinct values and a rare positive class.
    cases["probs"] = _case(rng.random(333), rng.random(333) < 0.1, 0.5)

    # Logits and their sigmoid; the threshold for logits is 0.
    logits = (rng.normal(size=257) * 3).astype(np.float32)
    labels = (rng.random(257) < 0.5) != (logits > 2)
    cases["logits"] = _case(logits, labels, 0.0)
    sigmoid = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    cases["sigmoid"] = _case(sigmoid, labels, 0.5)

    # Large magnitudes of both signs, with the float32 extremes (sklearn
    # rejects infinities).
    large = rng.normal(size=200) * 1e30
    large[:2] = [np.finfo(np.float32).max, -np.finfo(np.float32).max]
    cases["large"] = _case(large, rng.random(200) < 0.5, 0.0)

    # All scores equal: AUROC 0.5, a curve of two points.
    cases["equal"] = _case(np.full(17, 0.25), np.arange(17) % 3 == 0, 0.5)

    # Two objects, one of each class, in the wrong order.
    cases["two"] = _case([0.9, 0.1], [0, 1], 0.5)

    # One class only: undefined AUROC, accuracy still defined.
    cases["one_class"] = _case(rng.random(9), np.zeros(9), 0.5)

    for name, tensors in cases.items():
        st.save(os.path.join(out_dir, f"metrics_{name}.safetensors"), tensors)
    _scenes(rng, out_dir)

    # numpy's default (linear) percentiles, which the bootstrap intervals use.
    values = np.sort(rng.normal(size=37))
    quantiles = np.array([0.0, 0.025, 0.1, 0.5, 0.975, 1.0])
    st.save(os.path.join(out_dir, "metrics_percentile.safetensors"), {
        "values_f64": _f64(values),
        "quantiles_f64": _f64(quantiles),
        "percentiles_f64": _f64(np.percentile(values, quantiles * 100)),
    })
