"""Reference overlaps of yaw-only boxes (src/geometry/obb.c).

Shapely is not installed, so the footprint intersection is computed
exactly by a method other than the C code's clipping. It is the convex
hull (scipy.spatial.ConvexHull) of the corners of each rectangle that lie in
the other one and of the crossings of their edges. A fine-grid estimate
of a few of the areas checks that method here (cell 1/1000 of the box
size, so within 1e-2 of the area).

tests/ref/boxes_iou.safetensors holds:
  boxes_a, boxes_b (N, 7): centre x, y, z, size x, y, z, yaw in radians,
    rounded to float32 before the references are computed;
  footprint (N,): area where the two footprints overlap;
  iou (N,): rotated 3D IoU, 0 when the union is empty.
"""
import math
import os

import numpy as np
from scipy.spatial import ConvexHull

from refs import st


def _corners(box):
    cx, cy, _, sx, sy, _, yaw = box
    c, s = math.cos(yaw), math.sin(yaw)
    local = [(-sx / 2, -sy / 2), (sx / 2, -sy / 2), (sx / 2, sy / 2), (-sx / 2, sy / 2)]
    return np.array([(cx + c * x - s * y, cy + s * x + c * y) for x, y in local])


def _inside(point, rect, slack=1e-12):
    for i in range(4):
        a, b = rect[i], rect[(i + 1) % 4]
        if (b[0] - a[0]) * (point[1] - a[1]) - (b[1] - a[1]) * (point[0] - a[0]) < -slack:
            return False
    return True


def _crossing(p, q, a, b):
    d1, d2 = q - p, b - a
    denominator = d1[0] * d2[1] - d1[1] * d2[0]
    if denominator == 0.0:
        return None
    t = ((a[0] - p[0]) * d2[1] - (a[1] - p[1]) * d2[0]) / denominator
    u = ((a[0] - p[0]) * d1[1] - (a[1] - p[1]) * d1[0]) / denominator
    if 0.0 <= t <= 1.0 and 0.0 <= u <= 1.0:
        return p + t * d1
    return None


def footprint_intersection(box_a, box_b):
    if box_a[3] <= 0 or box_a[4] <= 0 or box_b[3] <= 0 or box_b[4] <= 0:
        return 0.0
    ra, rb = _corners(box_a), _corners(box_b)
    points = [p for p in ra if _inside(p, rb)] + [p for p in rb if _inside(p, ra)]
    for i in range(4):
        for j in range(4):
            x = _crossing(ra[i], ra[(i + 1) % 4], rb[j], rb[(j + 1) % 4])
            if x is not None:
                points.append(x)
    if len(points) < 3:
        return 0.0
    points = np.array(points)
    try:
        return float(ConvexHull(points).volume)  # a 2D hull's volume is its area
    except Exception:  # collinear or coincident points: zero area
        return 0.0


def iou_3d(box_a, box_b):
    za = (box_a[2] - box_a[5] / 2, box_a[2] + box_a[5] / 2)
    zb = (box_b[2] - box_b[5] / 2, box_b[2] + box_b[5] / 2)
    overlap = max(0.0, min(za[1], zb[1]) - max(za[0], zb[0]))
    intersection = footprint_intersection(box_a, box_b) * overlap
    union = box_a[3] * box_a[4] * box_a[5] + box_b[3] * box_b[4] * box_b[5] - intersection
    return intersection / union if union > 0 else 0.0


def _grid_area(box_a, box_b, cells=1000):
    """Fine-grid estimate of the footprint intersection over a's bounding square."""
    ra = _corners(box_a)
    lo, hi = ra.min(axis=0), ra.max(axis=0)
    xs = lo[0] + (np.arange(cells) + 0.5) * (hi[0] - lo[0]) / cells
    ys = lo[1] + (np.arange(cells) + 0.5) * (hi[1] - lo[1]) / cells
    x, y = np.meshgrid(xs, ys)
    inside = np.ones_like(x, dtype=bool)
    for rect in (ra, _corners(box_b)):
        for i in range(4):
            a, b = rect[i], rect[(i + 1) % 4]
            inside &= (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) >= 0
    return inside.mean() * (hi[0] - lo[0]) * (hi[1] - lo[1])


def _special_cases():
    q = math.pi / 4
    return [
        ((0, 0, 0, 2, 1, 1, 0.3), (0, 0, 0, 2, 1, 1, 0.3)),            # identical: 1
        ((0, 0, 0, 1, 1, 1, 0.0), (5, 0, 0, 1, 1, 1, 0.0)),            # disjoint: 0
        ((0, 0, 0, 1, 1, 1, 0.0), (0, 0, 3, 1, 1, 1, 0.0)),            # stacked apart in z: 0
        ((0, 0, 0, 4, 4, 4, 0.2), (0.3, -0.2, 0.1, 1, 1, 1, 1.1)),     # contained
        ((0, 0, 0, 1, 1, 1, 0.0), (0, 0, 0, 1, 1, 1, q)),              # 45 degree squares: 1/sqrt(2)
        ((0, 0, 0, 2, 1, 1, 0.0), (0, 0, 0, 2, 1, 1, math.pi)),        # same box, yaw + pi
        ((0, 0, 0, 2, 1, 1, 0.0), (0, 0, 0, 1, 2, 1, math.pi / 2)),    # same box, axes swapped
        ((0, 0, 0, 1, 1, 1, 0.0), (1, 0, 0, 1, 1, 1, 0.0)),            # touching faces: 0
        ((0, 0, 0, 0, 0, 0, 0.0), (0, 0, 0, 0, 0, 0, 0.0)),            # both empty: 0
        ((0, 0, 0, 0, 1, 1, 0.0), (0, 0, 0, 1, 1, 1, 0.0)),            # flat box: 0
        ((100, -50, 2, 1, 2, 1, 0.7), (100.2, -50.1, 2.3, 1.5, 1, 1, -0.4)),  # far from the origin
    ]


def generate(out_dir):
    rng = np.random.default_rng(61)
    pairs = [(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)) for a, b in _special_cases()]
    for _ in range(120):
        a = np.concatenate([rng.uniform(-1, 1, 3), rng.uniform(0.2, 2.0, 3), rng.uniform(-math.pi, math.pi, 1)])
        b = np.concatenate([a[:3] + rng.normal(0, 0.6, 3), rng.uniform(0.2, 2.0, 3),
                            rng.uniform(-math.pi, math.pi, 1)])
        pairs.append((a, b))
    boxes_a = np.array([p[0] for p in pairs]).astype(np.float32).astype(np.float64)
    boxes_b = np.array([p[1] for p in pairs]).astype(np.float32).astype(np.float64)
    footprint = np.array([footprint_intersection(a, b) for a, b in zip(boxes_a, boxes_b)])
    iou = np.array([iou_3d(a, b) for a, b in zip(boxes_a, boxes_b)])

    assert abs(iou[0] - 1) < 1e-6  # identical
    assert iou[1] == 0  # disjoint
    assert abs(iou[4] - 1 / math.sqrt(2)) < 1e-6  # 45 degree squares
    for k in [3, 4, 10] + list(range(11, 31)):
        grid = _grid_area(boxes_a[k], boxes_b[k])
        assert abs(grid - footprint[k]) <= 1e-2 * boxes_a[k][3] * boxes_a[k][4] + 1e-9, (k, grid, footprint[k])
    st.save(os.path.join(out_dir, "boxes_iou.safetensors"),
            {"boxes_a": boxes_a, "boxes_b": boxes_b, "footprint": footprint, "iou": iou},
            {"producer": "make_references.py"})
