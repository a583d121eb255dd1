#!/usr/bin/env python3
"""Draws training curves from `oddone train` loss files as one SVG.

usage: scripts/plot_losses.py OUT.svg NAME=RUN/losses.csv:COLUMN [...]

Each curve is one column of a losses.csv (e.g. feature, mask, colour,
classification), smoothed by a moving mean over 50 steps, on its own row
of the figure so that losses of different scales stay readable. Needs no
plotting library."""
import csv
import sys

WIDTH, ROW_HEIGHT, MARGIN = 640, 120, 50
WINDOW = 50


def read_curve(path, column):
    # A resumed run logs the steps after its last checkpoint again; the
    # later row of a step is the one the run continued from.
    by_step = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row.get(column, "") == "":
                continue
            by_step[int(row["step"])] = float(row[column])
    steps = sorted(by_step)
    values = [by_step[step] for step in steps]
    smoothed = []
    total = 0.0
    for i, value in enumerate(values):
        total += value
        if i >= WINDOW:
            total -= values[i - WINDOW]
        smoothed.append(total / min(i + 1, WINDOW))
    return steps, smoothed


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    curves = []
    for item in argv[2:]:
        name, _, spec = item.partition("=")
        path, _, column = spec.rpartition(":")
        if not path or not column:
            sys.stderr.write("plot_losses.py: expected NAME=FILE:COLUMN, got %s\n" % item)
            return 2
        steps, values = read_curve(path, column)
        if not steps:
            sys.stderr.write("plot_losses.py: %s has no values in column %s\n" % (path, column))
            return 1
        curves.append((name, steps, values))
    height = MARGIN + ROW_HEIGHT * len(curves)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
             'font-size="11">' % (WIDTH, height), '<rect width="100%" height="100%" fill="white"/>']
    for r, (name, steps, values) in enumerate(curves):
        top = MARGIN / 2 + r * ROW_HEIGHT
        low, high = min(values), max(values)
        span = high - low if high > low else 1.0
        last = max(steps)
        left, right = 60, WIDTH - 20
        plot_h = ROW_HEIGHT - 30

        def point(step, value):
            x = left + (right - left) * step / last
            y = top + plot_h - plot_h * (value - low) / span
            return "%.1f,%.1f" % (x, y)

        parts.append('<rect x="%d" y="%.1f" width="%d" height="%d" fill="none" stroke="#ccc"/>'
                     % (left, top, right - left, plot_h))
        parts.append('<polyline fill="none" stroke="#c03030" stroke-width="1.2" points="%s"/>'
                     % " ".join(point(s, v) for s, v in zip(steps, values)))
        parts.append('<text x="%d" y="%.1f">%s (mean of %d steps), steps 1 to %d</text>'
                     % (left, top - 4, name, WINDOW, last))
        parts.append('<text x="4" y="%.1f">%.3g</text>' % (top + 10, high))
        parts.append('<text x="4" y="%.1f">%.3g</text>' % (top + plot_h, low))
    parts.append("</svg>")
    with open(argv[1] + ".tmp", "w") as f:
        f.write("\n".join(parts) + "\n")
    import os
    os.replace(argv[1] + ".tmp", argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
