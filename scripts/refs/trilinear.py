"""Reference values for trilinear volume sampling (src/nn/trilinear.c).

The C layout is volume (N, D, H, W, C) and points (N, P, 3) as (x, y, z) in
voxel-index coordinates (voxel centres at integers, x along W). The
reference is torch.nn.functional.grid_sample in float64 on the NCDHW
volume with align_corners=True and padding_mode="zeros", whose grid holds
(x, y, z) normalised as 2 x / (size - 1) - 1.

Two details keep grid_sample exactly on the C convention:
- grid_sample unnormalises with ((g + 1) / 2) * (size - 1), which can land
  an ulp below a coordinate that sits on a voxel centre, and floor then
  picks the other cell. Each grid value is nudged by a few float64 ulps
  until the unnormalised value has the same floor as the coordinate, so
  such points take the same one-sided derivative as in the C code.
- An axis of size 1 is padded with one zero voxel on each side and its
  coordinates shifted by 1. grid_sample would map every coordinate of a
  size-1 axis onto the voxel, because its normalisation divides by 0. The C
  code treats the axis like any other, with zero padding beyond it.

A hand-written float64 trilinear interpolation checks both paths.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from refs import st


def _grid_value(coords, size):
    """float64 grid values that grid_sample unnormalises back to within an
    ulp or so of coords, and never across an integer: on the same side of
    floor(coords) as coords itself."""
    coords = np.asarray(coords, dtype=np.float64)
    grid = 2.0 * coords / (size - 1) - 1.0
    for _ in range(8):
        back = ((grid + 1.0) / 2.0) * (size - 1)
        low = np.floor(back) < np.floor(coords)
        high = np.floor(back) > np.floor(coords)
        if not (low.any() or high.any()):
            assert np.allclose(back, coords, rtol=0.0, atol=1e-12)
            return grid
        grid = np.where(low, np.nextafter(grid, np.inf), grid)
        grid = np.where(high, np.nextafter(grid, -np.inf), grid)
    raise AssertionError("could not find grid values on the right side of the voxel centres")


def grid_sample_reference(volume, points, d_out):
    """volume (N, D, H, W, C), points (N, P, 3), d_out (N, P, C), all float64.
    Returns out, d_volume, d_points."""
    N, D, H, W, C = volume.shape
    P = points.shape[1]
    sizes = [W, H, D]  # the axes of x, y, z
    pad = [1 if size == 1 else 0 for size in sizes]
    padded_sizes = [size + 2 * p for size, p in zip(sizes, pad)]

    ncdhw = volume.permute(0, 4, 1, 2, 3).detach().clone().requires_grad_()
    padded = F.pad(ncdhw, (pad[0], pad[0], pad[1], pad[1], pad[2], pad[2]))
    grid_np = np.stack([_grid_value(points[..., axis].numpy() + pad[axis], padded_sizes[axis])
                        for axis in range(3)], axis=-1)
    grid = torch.from_numpy(grid_np).reshape(N, P, 1, 1, 3).requires_grad_()
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    out = out.reshape(N, C, P).transpose(1, 2)  # (N, P, C)
    out.backward(d_out)
    d_volume = ncdhw.grad.permute(0, 2, 3, 4, 1)
    # The chain rule through g = 2 x / (size - 1) - 1.
    scale = torch.tensor([2.0 / (size - 1) for size in padded_sizes], dtype=torch.float64)
    d_points = grid.grad.reshape(N, P, 3) * scale
    return out.detach(), d_volume, d_points


def manual_reference(volume, points, d_out):
    """Trilinear interpolation written out, for checking grid_sample's use."""
    volume = volume.detach().clone().requires_grad_()
    points = points.detach().clone().requires_grad_()
    N, D, H, W, C = volume.shape
    below = torch.floor(points.detach()).long()
    frac = points - below  # gradient flows through frac
    out = torch.zeros(N, points.shape[1], C, dtype=torch.float64)
    for corner in range(8):
        offset = torch.tensor([corner & 1, (corner >> 1) & 1, corner >> 2])
        index = below + offset  # (N, P, 3) as (x, y, z)
        weight = torch.ones_like(frac[..., 0])
        for axis in range(3):
            weight = weight * (frac[..., axis] if offset[axis] else 1.0 - frac[..., axis])
        x, y, z = index[..., 0], index[..., 1], index[..., 2]
        inside = (x >= 0) & (x < W) & (y >= 0) & (y < H) & (z >= 0) & (z < D)
        n = torch.arange(N).reshape(N, 1).expand_as(x)
        values = volume[n, z.clamp(0, D - 1), y.clamp(0, H - 1), x.clamp(0, W - 1)]
        out = out + (weight * inside)[..., None] * values
    out.backward(d_out)
    return out.detach(), volume.grad, points.grad


def _special_coordinates(size):
    """Coordinates on centres, borders and just outside an axis of `size` voxels."""
    return [-1.5, -1.0, -0.75, -0.5, 0.0, 0.25, size - 1.0, size - 0.5, size - 0.25, float(size),
            size + 0.5, (size - 1) / 2.0]


def make_points(N, P, D, H, W, generator, clustered=False):
    """Random points over [-1.5, size + 0.5] per axis, with special values
    mixed in: integers (voxel centres), the borders -1 and size, and points
    whose every coordinate is special."""
    sizes = [W, H, D]
    points = torch.empty(N, P, 3, dtype=torch.float64)
    for axis, size in enumerate(sizes):
        points[..., axis] = torch.rand(N, P, generator=generator, dtype=torch.float64) * (size + 2.0) - 1.5
    if clustered:
        # Quarter-voxel steps put many points into the same cells.
        points = torch.round(points * 4.0) / 4.0
    # Round to float32, the precision the C code reads.
    points = points.float().double()
    special = [torch.tensor(_special_coordinates(size), dtype=torch.float64) for size in sizes]
    for n in range(N):
        for p in range(0, P, 3):
            axis = (p // 3) % 3
            choice = special[axis][torch.randint(len(special[axis]), (1,), generator=generator)]
            points[n, p, axis] = choice
        for p in range(1, P, 7):
            for axis in range(3):
                points[n, p, axis] = torch.floor(points[n, p, axis])
        for p in range(2, P, 11):
            for axis in range(3):
                choice = special[axis][torch.randint(len(special[axis]), (1,), generator=generator)]
                points[n, p, axis] = choice
    return points


def _case(path, N, D, H, W, C, P, seed, clustered=False):
    generator = torch.Generator().manual_seed(seed)
    volume = torch.randn(N, D, H, W, C, generator=generator, dtype=torch.float64).float().double()
    points = make_points(N, P, D, H, W, generator, clustered)
    d_out = torch.randn(N, P, C, generator=generator, dtype=torch.float64)

    out, d_volume, d_points = grid_sample_reference(volume, points, d_out)
    check = manual_reference(volume, points, d_out)
    for name, got, want in zip(("out", "d_volume", "d_points"), (out, d_volume, d_points), check):
        assert torch.allclose(got, want, atol=1e-10), f"{path}: grid_sample and manual {name} differ"
    st.save(path, {"volume": volume, "points": points, "d_out": d_out, "out": out,
                   "d_volume": d_volume, "d_points": d_points},
            {"N": N, "D": D, "H": H, "W": W, "C": C, "P": P})


def generate(out_dir):
    path = lambda name: os.path.join(out_dir, f"trilinear_{name}.safetensors")  # noqa: E731
    _case(path("small"), N=2, D=3, H=4, W=5, C=3, P=90, seed=1)
    _case(path("size1"), N=1, D=1, H=1, W=6, C=1, P=60, seed=2)
    _case(path("size1_w"), N=2, D=4, H=3, W=1, C=5, P=50, seed=3)
    _case(path("clustered"), N=1, D=6, H=7, W=9, C=19, P=400, seed=4, clustered=True)
    _case(path("c32"), N=1, D=4, H=8, W=8, C=32, P=300, seed=5)
