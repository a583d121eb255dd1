#!/usr/bin/env python3
"""Print a benchmark version's counts as the Markdown tables of
docs/BENCHMARK.md: objects per anomaly kind per split, and rejected
candidates per 100 accepted scenes, read from each dataset's manifest.json.

usage: scripts/bench_counts.py BENCH_DIR   (e.g. out/bench-v1)
"""
import json
import os
import sys

KINDS = ["bend", "bump", "crack", "fracture", "material", "missing", "rotated", "translated", "twist", "distinct"]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip())
    root = sys.argv[1]
    datasets = sorted(
        name for name in os.listdir(root) if os.path.isfile(os.path.join(root, name, "manifest.json"))
    )
    if not datasets:
        sys.exit("bench_counts: %s contains no dataset with a manifest.json" % root)
    manifests = {}
    for name in datasets:
        with open(os.path.join(root, name, "manifest.json")) as file:
            manifests[name] = json.load(file)

    print("| dataset | split | scenes | all normal | objects | odd | " + " | ".join(KINDS) + " |")
    print("| --- " * (6 + len(KINDS)) + "|")
    for name in datasets:
        for split, counts in manifests[name]["splits"].items():
            kinds = counts.get("anomaly_kinds", {})
            cells = [name, split, counts["scenes"], counts["all_normal_scenes"], counts["objects"],
                     counts["anomalous_objects"]] + [kinds.get(kind, 0) for kind in KINDS]
            print("| " + " | ".join(str(cell) for cell in cells) + " |")

    reasons = []
    for manifest in manifests.values():
        for split in manifest["splits"].values():
            for reason in split.get("rejections", {}):
                if reason not in reasons:
                    reasons.append(reason)
    print()
    print("| dataset | split | " + " | ".join(reason.replace("_", " ") for reason in reasons) + " |")
    print("| --- " * (2 + len(reasons)) + "|")
    for name in datasets:
        for split, counts in manifests[name]["splits"].items():
            rejections = counts.get("rejections", {})
            scenes = max(counts["scenes"], 1)
            cells = ["%.1f" % (100.0 * rejections.get(reason, 0) / scenes) for reason in reasons]
            print("| %s | %s (%d scenes) | %s |" % (name, split, counts["scenes"], " | ".join(cells)))


if __name__ == "__main__":
    main()
