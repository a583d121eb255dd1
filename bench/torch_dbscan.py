"""scikit-learn peer of bench/bench_dbscan.c: sklearn.cluster.DBSCAN (default
algorithm "auto", which picks a tree) on the same voxels, eps and
min_samples, with n_jobs set to the thread count. Only the clustering is
timed; PyTorch has no DBSCAN, so this peer does not use it."""
import numpy as np
from sklearn.cluster import DBSCAN

import torch_common

GRID_X, GRID_Y, GRID_Z = 64, 64, 16
SCATTERED = 400
EPS, MIN_POINTS = 1.5, 5
BLOBS = [(14, 14, 8, 11, 9, 6), (46, 16, 8, 10, 10, 6), (16, 48, 7, 12, 8, 6), (48, 48, 8, 9, 11, 6),
         (32, 32, 8, 6, 6, 5)]
MASK = (1 << 64) - 1


def make_voxels():
    """(N, 3) as (x, y, z), in the order make_voxels in bench_dbscan.c writes them."""
    voxels = []
    for z in range(GRID_Z):
        for y in range(GRID_Y):
            for x in range(GRID_X):
                for cx, cy, cz, rx, ry, rz in BLOBS:
                    if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0:
                        voxels.append((x, y, z))
                        break
    state = 1
    for _ in range(SCATTERED):
        voxel = []
        for size in (GRID_X, GRID_Y, GRID_Z):
            state = (state * 6364136223846793005 + 1442695040888963407) & MASK
            voxel.append((state >> 33) % size)
        voxels.append(tuple(voxel))
    return np.array(voxels, dtype=np.float64)


def main():
    threads = torch_common.setup()
    voxels = make_voxels()
    model = DBSCAN(eps=EPS, min_samples=MIN_POINTS, n_jobs=threads)
    labels = model.fit(voxels).labels_
    print(f"torch_dbscan: {len(voxels)} voxels, {labels.max() + 1} clusters, {(labels < 0).sum()} noise")
    torch_common.report("dbscan_64x64x16_blobs", torch_common.median_ms(lambda: model.fit(voxels), 2, 7))


if __name__ == "__main__":
    main()
