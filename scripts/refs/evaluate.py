"""Reference values for src/eval/evaluate.c from scikit-learn 1.2 and SciPy.

Sixty random scenes of 0 to 8 true boxes on a grid, each with a prediction
that is shifted, resized and turned (some too far to match), some
predictions dropped and a few false positives added. The matching is
SciPy's Hungarian assignment (linear_sum_assignment) maximising the summed
IoU over pairs above 0.5; the script asserts that a greedy assignment in
order of decreasing IoU, as the C code does, finds the same pairs on these
scenes. IoUs come from refs.boxes.iou_3d, computed by another method than
the C code's, and no pair lies within 1e-6 of the threshold.

scikit-learn rejects infinite scores, so the -infinity that a missed object
gets is replaced by (lowest finite score - 1) here, which ranks the same.
Accuracy is accuracy_score with a missed object's prediction set to the
wrong label.

tests/ref/evaluate_scenes.safetensors contains the tensors below. Float64 values are raw bytes
in U8 tensors named "*_f64", as refs.metrics stores them.
  scene_offsets (S + 1), truth_boxes_f64 (T, 7), truth_labels (T),
  truth_kinds (T; -1 normal, 0 bend, 1 crack, 2 fracture, 3 unknown),
  prediction_offsets (S + 1), prediction_boxes_f64 (P, 7),
  prediction_scores (P, float32), prediction_has_score (P), prediction_odd (P);
  per true object: match (T, -1 when missed), match_iou_f64, best_iou_f64,
  eval_scores (float32, -inf when missed or unscored), correct;
  pooled_auroc_f64, scene_auroc_f64, scenes_skipped, matched_auroc_f64,
  accuracy_f64, top1_f64, top1_scenes, miou_f64, recall_f64,
  count_accuracy_f64, kind_correct and kind_total (rows bend, crack,
  fracture, normal, unknown), size_keys, size_correct, size_total.
Boxes are centre x, y, z, size x, y, z, yaw in radians.
"""
import math
import os

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import accuracy_score, roc_auc_score

from refs import st
from refs.boxes import iou_3d

THRESHOLD = 0.5
KIND_NAMES = ["bend", "crack", "fracture"]  # code 3 is an anomalous object of unknown kind


def _f64(values):
    return np.ascontiguousarray(np.asarray(values, dtype="<f8").reshape(-1)).view(np.uint8)


def _scene(rng, truth_count):
    cells = rng.permutation(25)[:truth_count]
    truth = []
    for cell in cells:
        size = rng.uniform(0.05, 0.12, 3)
        centre = [(cell % 5 - 2) * 0.2, (cell // 5 - 2) * 0.2, size[2] / 2]
        truth.append(np.concatenate([centre, size, [rng.uniform(-math.pi, math.pi)]]))
    predictions = []
    for box in truth:
        if rng.random() < 0.15:
            continue  # not found at all
        shift = rng.normal(0, 0.005 if rng.random() < 0.85 else 0.04, 3)
        shift[2] *= 0.3
        size = box[3:6] * rng.uniform(0.9, 1.12, 3)
        yaw = box[6] + rng.normal(0, 0.08)
        predictions.append(np.concatenate([box[:3] + shift, size, [yaw]]))
    for _ in range(rng.integers(0, 3)):  # false positives, some beside a true box
        centre = [rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.04]
        predictions.append(np.concatenate([centre, rng.uniform(0.05, 0.1, 3), [rng.uniform(-3, 3)]]))
    order = rng.permutation(len(predictions))
    predictions = [predictions[i] for i in order]
    truth = np.array(truth, dtype=np.float64).reshape(-1, 7)
    predictions = np.array(predictions, dtype=np.float64).reshape(-1, 7)
    return truth, predictions


def _match(truth, predictions):
    iou = np.array([[iou_3d(t, p) for p in predictions] for t in truth]).reshape(len(truth), len(predictions))
    assert not np.any(np.abs(iou - THRESHOLD) < 1e-6), "a pair lies on the threshold"
    best = iou.max(axis=1) if iou.shape[1] > 0 else np.zeros(len(truth))
    match = np.full(len(truth), -1, dtype=np.int64)
    if iou.size:
        rows, cols = linear_sum_assignment(np.where(iou > THRESHOLD, iou, 0.0), maximize=True)
        for r, c in zip(rows, cols):
            if iou[r, c] > THRESHOLD:
                match[r] = c
    # The greedy order of the C code must give the same pairs here.
    greedy = np.full(len(truth), -1, dtype=np.int64)
    used = set()
    pairs = sorted(((iou[t, p], t, p) for t in range(len(truth)) for p in range(len(predictions))
                    if iou[t, p] > THRESHOLD), key=lambda x: (-x[0], x[1], x[2]))
    for _, t, p in pairs:
        if greedy[t] < 0 and p not in used:
            greedy[t] = p
            used.add(p)
    assert np.array_equal(match, greedy), "greedy and Hungarian matching differ"
    matched_iou = np.array([iou[t, match[t]] if match[t] >= 0 else 0.0 for t in range(len(truth))])
    return match, matched_iou, best


def generate(out_dir):
    rng = np.random.default_rng(7)
    scene_count = 60
    counts = rng.integers(2, 9, size=scene_count)
    counts[5] = 0   # a scene without objects
    counts[9] = 1   # one object only
    truth_all, labels_all, kinds_all, pred_all = [], [], [], []
    scores_all, has_score_all, odd_all = [], [], []
    match_all, match_iou_all, best_all = [], [], []
    truth_offsets, pred_offsets = [0], [0]
    for s in range(scene_count):
        truth, predictions = _scene(rng, counts[s])
        labels = (rng.random(len(truth)) < 0.25).astype(np.uint8)
        if s % 7 == 0:
            labels[:] = 0  # scenes without an anomaly
        kinds = np.where(labels == 1, rng.integers(0, 4, len(truth)), -1).astype(np.int64)
        scores = np.round(rng.normal(size=len(predictions)), 1).astype(np.float32)
        has_score = (rng.random(len(predictions)) < 0.9).astype(np.uint8)
        if s == 11:
            scores[:] = 0.5  # all scores equal
        odd = (rng.random(len(predictions)) < 0.3).astype(np.uint8)
        match, matched_iou, best = _match(truth, predictions)
        truth_all.append(truth)
        labels_all.append(labels)
        kinds_all.append(kinds)
        pred_all.append(predictions)
        scores_all.append(scores)
        has_score_all.append(has_score)
        odd_all.append(odd)
        match_all.append(match)
        match_iou_all.append(matched_iou)
        best_all.append(best)
        truth_offsets.append(truth_offsets[-1] + len(truth))
        pred_offsets.append(pred_offsets[-1] + len(predictions))

    labels = np.concatenate(labels_all)
    kinds = np.concatenate(kinds_all)
    match = np.concatenate(match_all)
    eval_scores, predicted, scored = [], [], []
    for s in range(scene_count):
        for t, m in enumerate(match_all[s]):
            ok = bool(m >= 0 and has_score_all[s][m])
            eval_scores.append(scores_all[s][m] if ok else -np.inf)
            scored.append(ok)
            predicted.append(odd_all[s][m] if m >= 0 else 1 - labels_all[s][t])
    eval_scores = np.array(eval_scores, dtype=np.float32)
    predicted = np.array(predicted, dtype=np.uint8)
    scored = np.array(scored, dtype=bool)
    correct = (predicted == labels).astype(np.uint8)

    finite = eval_scores.astype(np.float64)
    finite[np.isinf(finite)] = finite[np.isfinite(finite)].min() - 1.0
    per_scene, skipped = [], 0
    top1_hits = []
    for s in range(scene_count):
        y = labels[truth_offsets[s]:truth_offsets[s + 1]]
        x = finite[truth_offsets[s]:truth_offsets[s + 1]]
        if len(y) == 0 or y.min() == y.max():
            skipped += 1
        else:
            per_scene.append(roc_auc_score(y, x))
        if y.sum() == 1:
            top = x.max()
            tied = np.sum(x == top)
            top1_hits.append(1.0 / tied if x[y == 1][0] == top else 0.0)

    best = np.concatenate(best_all)
    truth_counts = np.diff(truth_offsets)
    pred_counts = np.diff(pred_offsets)
    kind_rows = KIND_NAMES + ["normal", "unknown"]
    kind_codes = [0, 1, 2, -1, 3]
    object_sizes = np.repeat(truth_counts, truth_counts)
    size_keys = np.unique(object_sizes)

    tensors = {
        "scene_offsets": np.array(truth_offsets, np.int64),
        "truth_boxes_f64": _f64(np.concatenate(truth_all)),
        "truth_labels": labels,
        "truth_kinds": kinds,
        "prediction_offsets": np.array(pred_offsets, np.int64),
        "prediction_boxes_f64": _f64(np.concatenate(pred_all)),
        "prediction_scores": np.concatenate(scores_all).astype(np.float32),
        "prediction_has_score": np.concatenate(has_score_all),
        "prediction_odd": np.concatenate(odd_all),
        "match": match,
        "match_iou_f64": _f64(np.concatenate(match_iou_all)),
        "best_iou_f64": _f64(best),
        "eval_scores": eval_scores,
        "correct": correct,
        "pooled_auroc_f64": _f64(roc_auc_score(labels, finite)),
        "scene_auroc_f64": _f64(np.mean(per_scene)),
        "scenes_skipped": np.array([skipped], np.int64),
        "matched_auroc_f64": _f64(roc_auc_score(labels[scored], finite[scored])),
        "accuracy_f64": _f64(accuracy_score(labels, predicted)),
        "top1_f64": _f64(np.mean(top1_hits)),
        "top1_scenes": np.array([len(top1_hits)], np.int64),
        "miou_f64": _f64(best.mean()),
        "recall_f64": _f64(np.mean(match >= 0)),
        "count_accuracy_f64": _f64(np.mean(pred_counts == truth_counts)),
        "kind_correct": np.array([correct[kinds == c].sum() for c in kind_codes], np.int64),
        "kind_total": np.array([np.sum(kinds == c) for c in kind_codes], np.int64),
        "size_keys": size_keys.astype(np.int64),
        "size_correct": np.array([correct[object_sizes == k].sum() for k in size_keys], np.int64),
        "size_total": np.array([np.sum(object_sizes == k) for k in size_keys], np.int64),
    }
    assert all(tensors["kind_total"] > 0), kind_rows
    st.save(os.path.join(out_dir, "evaluate_scenes.safetensors"), tensors)
