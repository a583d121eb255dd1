"""PyTorch peer of bench_lift.c: five 256 x 256 views with 32-channel
feature maps at stride 4 lifted into the 64 x 64 x 16 grid of 2 cm voxels
(mean over the views that see each voxel centre), with the same cameras,
projection and validity rule as the C side."""
import math

import torch
import torch.nn.functional as F

from torch_common import median_ms, report, setup

VIEWS, SIZE, STRIDE, CHANNELS = 5, 256, 4, 32
CELLS = SIZE // STRIDE
X, Y, Z, VOXEL = 64, 64, 16, 0.02


def voxel_centres():
    k, j, i = torch.meshgrid(torch.arange(Z), torch.arange(Y), torch.arange(X), indexing="ij")
    centres = torch.stack([-0.64 + (i + 0.5) * VOXEL, -0.64 + (j + 0.5) * VOXEL, (k + 0.5) * VOXEL], -1)
    return centres.reshape(-1, 3).float()


def projection(view):
    """Camera on a ring 0.8 m out at 45 degrees, looking at the grid."""
    angle = 2 * math.pi * view / VIEWS
    e = math.sqrt(0.5)
    c, s = math.cos(angle), math.sin(angle)
    position = torch.tensor([0.8 * c * e, 0.8 * s * e, 0.05 + 0.8 * e])
    right = torch.tensor([-s, c, 0.0])
    forward = torch.tensor([-c * e, -s * e, -e])
    down = torch.cross(forward, right)
    rotation = torch.stack([right, down, forward])
    translation = -rotation @ position
    centre = (127.5 + 0.5) / STRIDE - 0.5
    k = torch.tensor([[280 / STRIDE, 0, centre], [0, 280 / STRIDE, centre], [0, 0, 1.0]])
    return k @ torch.cat([rotation, translation[:, None]], 1)


def main():
    setup()
    torch.manual_seed(1)
    centres = voxel_centres()
    matrices = torch.stack([projection(v) for v in range(VIEWS)])
    features = torch.randn(VIEWS, CHANNELS, CELLS, CELLS)

    def lift():
        camera = torch.einsum("vij,nj->vni", matrices[:, :, :3], centres) + matrices[:, None, :, 3]
        depth = camera[..., 2]
        u = camera[..., 0] / depth
        v = camera[..., 1] / depth
        valid = (depth > 1e-6) & (u >= 0) & (u <= CELLS - 1) & (v >= 0) & (v <= CELLS - 1)
        grid = torch.stack([2 * u / (CELLS - 1) - 1, 2 * v / (CELLS - 1) - 1], -1)[:, None]
        sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, :, 0]
        weight = valid.float()
        total = (sampled * weight[:, None]).sum(0)
        count = weight.sum(0)
        return (total / count.clamp(min=1)).T.reshape(Z, Y, X, CHANNELS), count

    ms = median_ms(lift, warmup=3, repeats=21)
    report("lift_5views_256px_stride4_c32", ms)
    report("lift_per_view_256px_stride4_c32", ms / VIEWS)


if __name__ == "__main__":
    main()
