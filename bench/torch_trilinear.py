"""PyTorch peer of bench/bench_trilinear.c (same names, sizes and points).

grid_sample on the (1, 32, 16, 64, 64) volume in PyTorch's native NCDHW
layout and in channels_last_3d; each name reports the faster of the two.
The grid is the C benchmark's voxel coordinates normalised for
align_corners=True.
"""
import math
import sys

import torch
import torch.nn.functional as F

import torch_common

DEPTH, HEIGHT, WIDTH, CHANNELS = 16, 64, 64, 32
VIEWS, RAYS_PER_SIDE, SAMPLES_PER_RAY = 5, 32, 64


def ray_points():
    """(P, 3) voxel coordinates (x, y, z), computed as fill_ray_points in
    bench_trilinear.c does."""
    size = (WIDTH, HEIGHT, DEPTH)
    centre = ((WIDTH - 1) / 2.0, (HEIGHT - 1) / 2.0, (DEPTH - 1) / 2.0)
    radius, half_extent = 1.5 * WIDTH, 0.5 * WIDTH
    elevation = math.radians(30.0)
    points = []
    for view in range(VIEWS):
        azimuth = 2.0 * math.pi * view / VIEWS
        origin = (centre[0] + radius * math.cos(elevation) * math.cos(azimuth),
                  centre[1] + radius * math.cos(elevation) * math.sin(azimuth),
                  centre[2] + radius * math.sin(elevation))
        right = (-math.sin(azimuth), math.cos(azimuth), 0.0)
        up = (-math.sin(elevation) * math.cos(azimuth), -math.sin(elevation) * math.sin(azimuth),
              math.cos(elevation))
        for row in range(RAYS_PER_SIDE):
            for col in range(RAYS_PER_SIDE):
                u = ((col + 0.5) / RAYS_PER_SIDE * 2.0 - 1.0) * half_extent
                v = ((row + 0.5) / RAYS_PER_SIDE * 2.0 - 1.0) * half_extent
                direction = [centre[a] + u * right[a] + v * up[a] - origin[a] for a in range(3)]
                length = math.sqrt(sum(d * d for d in direction))
                direction = [d / length for d in direction]
                near, far = 0.0, 1e30
                for a in range(3):
                    if abs(direction[a]) < 1e-12:
                        continue
                    t0 = (-0.5 - origin[a]) / direction[a]
                    t1 = (size[a] - 0.5 - origin[a]) / direction[a]
                    near = max(near, min(t0, t1))
                    far = min(far, max(t0, t1))
                if near >= far:
                    near, far = radius - half_extent, radius + half_extent
                t = near + (torch.arange(SAMPLES_PER_RAY, dtype=torch.float64) + 0.5) / SAMPLES_PER_RAY * (far - near)
                points.append(torch.stack([origin[a] + t * direction[a] for a in range(3)], dim=1))
    return torch.cat(points).float()


def main():
    torch_common.setup()
    points = ray_points()
    P = points.shape[0]
    scale = torch.tensor([2.0 / (WIDTH - 1), 2.0 / (HEIGHT - 1), 2.0 / (DEPTH - 1)])
    grid = (points * scale - 1.0).reshape(1, P, 1, 1, 3)
    volume = torch.randn(1, CHANNELS, DEPTH, HEIGHT, WIDTH)
    d_out = torch.randn(1, CHANNELS, P, 1, 1)
    layouts = [("NCDHW", volume.contiguous()),
               ("channels_last_3d", volume.to(memory_format=torch.channels_last_3d))]

    def sample(vol, g):
        return F.grid_sample(vol, g, mode="bilinear", padding_mode="zeros", align_corners=True)

    forward_flops = 16.0 * CHANNELS * P
    best = None
    for label, vol in layouts:
        with torch.no_grad():
            ms = torch_common.median_ms(lambda: sample(vol, grid), warmup=3, repeats=20)
        print(f"torch_trilinear: trilinear_fwd {label}: {ms:.2f} ms", file=sys.stderr)
        best = ms if best is None else min(best, ms)
    torch_common.report("trilinear_fwd", best, forward_flops)

    best = None
    for label, vol in layouts:
        vol = vol.detach().requires_grad_()
        g = grid.detach().requires_grad_()

        def forward_backward():
            vol.grad = None
            g.grad = None
            sample(vol, g).backward(d_out)

        ms = torch_common.median_ms(forward_backward, warmup=3, repeats=20)
        print(f"torch_trilinear: trilinear_fwdbwd {label}: {ms:.2f} ms", file=sys.stderr)
        best = ms if best is None else min(best, ms)
    torch_common.report("trilinear_fwdbwd", best, 3.0 * forward_flops)


if __name__ == "__main__":
    main()
