#!/usr/bin/env python3
"""Prints Markdown table rows from `oddone eval` result folders.

usage: scripts/results_table.py NAME=DIR [NAME=DIR ...]
       scripts/results_table.py --paired NAME=DIR [NAME=DIR ...]

The first form gives one row per folder (metrics.json): scenes, objects,
pooled and scene-mean AUROC with their 95 % bootstrap intervals, accuracy,
top-1 hit rate, box mIoU, recall at IoU > 0.5 and seconds per scene. The
AUROC matched is pooled over the true objects that a predicted box
matched, so it shows the scores apart from localization. The second form reads paired.json from `oddone eval --paired` folders and
prints the AUROC and accuracy differences with their intervals."""
import json
import os
import sys


def interval(entry):
    low, high = entry["interval"]
    return "%.3f [%.2f, %.2f]" % (entry["value"], low, high)


def metric_row(name, folder):
    with open(os.path.join(folder, "metrics.json")) as f:
        m = json.load(f)
    scenes = m["scenes"]
    matched = m["auroc"]["matched_objects"]
    return "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %.2f |" % (
        name, os.path.basename(m["dataset"].rstrip("/")) + " " + m["split"], scenes["evaluated"], m["objects"]["total"],
        interval(m["auroc"]["pooled"]), "n/a" if matched is None else "%.3f" % matched, interval(m["auroc"]["scene_mean"]),
        interval(m["accuracy"]), interval(m["top1_hit_rate"]),
        interval(m["box_miou"]), interval(m["recall"]), scenes["seconds_per_scene"])


def paired_row(name, folder):
    with open(os.path.join(folder, "paired.json")) as f:
        p = json.load(f)
    cells = []
    for key in ("pooled_auroc", "scene_auroc", "accuracy", "top1_hit_rate"):
        d = p[key]
        low, high = d["interval"]
        cells.append("%+.3f [%+.2f, %+.2f]" % (d["difference"], low, high))
    return "| %s | %s |" % (name, " | ".join(cells))


def main(argv):
    paired = len(argv) > 1 and argv[1] == "--paired"
    pairs = argv[2:] if paired else argv[1:]
    if not pairs:
        sys.stderr.write(__doc__)
        return 2
    if paired:
        print("| comparison | AUROC pooled | AUROC scene mean | accuracy | top-1 |")
        print("|---|---|---|---|---|")
    else:
        print("| run | split | scenes | objects | AUROC pooled [95 %] | AUROC matched | AUROC scene mean"
              " | accuracy | top-1 | box mIoU | recall | s / scene |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for item in pairs:
        name, _, folder = item.partition("=")
        if not folder:
            sys.stderr.write("results_table.py: expected NAME=DIR, got %s\n" % item)
            return 2
        try:
            print(paired_row(name, folder) if paired else metric_row(name, folder))
        except (OSError, KeyError, ValueError) as error:
            sys.stderr.write("results_table.py: %s: %s\n" % (folder, error))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
