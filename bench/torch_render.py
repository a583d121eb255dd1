"""PyTorch peer of bench/bench_render.c (same names, sizes, cameras and rays).

Rays: the C benchmark's cameras, one ray per pixel through its centre,
clipped to the grid's box by the slab test, 64 samples at the strata's
middles, computed with batched tensor operations. Rendering: the raw
density is stacked onto the feature volume as one more channel, so that a
single grid_sample (align_corners=True, zero padding) reads both, in
PyTorch's native NCDHW layout and in channels_last_3d; each name reports
the faster. Compositing with softplus, an exclusive cumsum of the optical
depth, exp and expm1; the backward is autograd's, from losses on the
rendered features and the opacity. RoI pooling: grid_sample at the cell
centres of 7 oriented boxes, with the empty cells masked.
"""
import math
import sys

import torch
import torch.nn.functional as F

import torch_common

VIEWS, SAMPLES = 5, 64
IMAGE_SIDE, FOCAL, DISTANCE, ELEVATION = 256, 213.33, 0.8, math.radians(30.0)
DIMS = (64, 64, 16)  # X, Y, Z
ORIGIN = torch.tensor([-0.64, -0.64, 0.0], dtype=torch.float64)
VOXEL = 0.02
BOXES, CELLS, FEATURE_CHANNELS = 7, 8, 64


def camera(view):
    """K (3, 3) and world_to_camera (4, 4), as view_camera in bench_render.c."""
    centre = (IMAGE_SIDE - 1) / 2.0
    K = torch.tensor([[FOCAL, 0, centre], [0, FOCAL, centre], [0, 0, 1]], dtype=torch.float64)
    azimuth = 2.0 * math.pi * view / VIEWS
    target = torch.tensor([0.0, 0.0, 0.16], dtype=torch.float64)
    eye = target + DISTANCE * torch.tensor([math.cos(ELEVATION) * math.cos(azimuth),
                                            math.cos(ELEVATION) * math.sin(azimuth),
                                            math.sin(ELEVATION)], dtype=torch.float64)
    forward = (target - eye) / (target - eye).norm()
    right = torch.tensor([forward[1], -forward[0], 0.0], dtype=torch.float64)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward])
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = R
    pose[:3, 3] = -R @ eye
    return K, pose


def view_rays(K, pose, side):
    """(side * side, SAMPLES, 3) voxel coordinates and (side * side, SAMPLES) steps."""
    scale = side / IMAGE_SIDE
    fx, fy = K[0, 0] * scale, K[1, 1] * scale
    cx, cy = (K[0, 2] + 0.5) * scale - 0.5, (K[1, 2] + 0.5) * scale - 0.5
    R, t = pose[:3, :3], pose[:3, 3]
    v, u = torch.meshgrid(torch.arange(side, dtype=torch.float64),
                          torch.arange(side, dtype=torch.float64), indexing="ij")
    camera_directions = torch.stack([(u.reshape(-1) - cx) / fx, (v.reshape(-1) - cy) / fy,
                                     torch.ones(side * side, dtype=torch.float64)], 1)
    directions = camera_directions @ R
    directions = directions / directions.norm(dim=1, keepdim=True)

    eye = (-R.T @ t - ORIGIN) / VOXEL - 0.5
    low = torch.full((3,), -0.5, dtype=torch.float64)
    high = torch.tensor(DIMS, dtype=torch.float64) - 0.5
    t0 = (low - eye) / directions
    t1 = (high - eye) / directions
    near = torch.clamp(torch.minimum(t0, t1).max(dim=1).values, min=0.0)
    far = torch.maximum(t0, t1).min(dim=1).values
    hit = far > near
    step = torch.where(hit, (far - near) / SAMPLES, torch.zeros_like(far))

    middles = torch.arange(SAMPLES, dtype=torch.float64) + 0.5
    points = eye + (near[:, None] + middles * step[:, None])[..., None] * directions[:, None, :]
    points = torch.minimum(torch.maximum(points, low), high)
    points = torch.where(hit[:, None, None], points, torch.full_like(points, -2.0))
    return points.float(), step[:, None].expand(-1, SAMPLES).float()


def all_rays(side):
    rays = [view_rays(*camera(v), side) for v in range(VIEWS)]
    return torch.cat([p for p, _ in rays]), torch.cat([d for _, d in rays])


def normalised_grid(points):
    """Voxel coordinates (..., 3) to grid_sample's (1, P, 1, 1, 3)."""
    scale = torch.tensor([2.0 / (size - 1) for size in DIMS])
    return (points.reshape(-1, 3) * scale - 1.0).reshape(1, -1, 1, 1, 3)


def render(volume, grid, delta, C):
    """volume (1, C + 1, D, H, W) with the raw density in channel 0."""
    R, S = delta.shape
    samples = F.grid_sample(volume, grid, mode="bilinear", padding_mode="zeros",
                            align_corners=True).reshape(C + 1, R, S)
    tau = F.softplus(samples[0]) * delta
    depth = torch.cumsum(tau, dim=1) - tau
    weights = torch.exp(-depth) * -torch.expm1(-tau)
    feature = torch.einsum("rs,crs->rc", weights, samples[1:])
    opacity = -torch.expm1(-tau.sum(dim=1))
    return feature, opacity


def bench_render(side, C):
    points, delta = all_rays(side)
    R = delta.shape[0]
    grid = normalised_grid(points)
    X, Y, Z = DIMS
    volume = torch.cat([torch.randn(1, 1, Z, Y, X) * 2.0 - 1.0, torch.randn(1, C, Z, Y, X)], dim=1)
    d_feature, d_opacity = torch.randn(R, C), torch.randn(R)
    layouts = [("NCDHW", volume.contiguous()),
               ("channels_last_3d", volume.to(memory_format=torch.channels_last_3d))]
    base = f"render_5x{side}x{side}_s{SAMPLES}_c{C}"

    best = None
    for label, vol in layouts:
        with torch.no_grad():
            ms = torch_common.median_ms(lambda: render(vol, grid, delta, C), warmup=1, repeats=5)
        print(f"torch_render: {base}_fwd {label}: {ms:.2f} ms", file=sys.stderr)
        best = ms if best is None else min(best, ms)
    torch_common.report(f"{base}_fwd", best)

    best = None
    for label, vol in layouts:
        vol = vol.detach().requires_grad_()

        def forward_backward():
            vol.grad = None
            feature, opacity = render(vol, grid, delta, C)
            ((feature * d_feature).sum() + (opacity * d_opacity).sum()).backward()

        ms = torch_common.median_ms(forward_backward, warmup=1, repeats=5)
        print(f"torch_render: {base}_fwdbwd {label}: {ms:.2f} ms", file=sys.stderr)
        best = ms if best is None else min(best, ms)
    torch_common.report(f"{base}_fwdbwd", best)


def roi_points():
    """(BOXES * CELLS^3, 3) voxel coordinates of the padded cubic boxes of bench_render.c."""
    c, b, a = torch.meshgrid(*(torch.arange(CELLS, dtype=torch.float64),) * 3, indexing="ij")
    unit = (torch.stack([a.reshape(-1), b.reshape(-1), c.reshape(-1)], 1) + 0.5) / CELLS - 0.5
    out = []
    for box in range(BOXES):
        angle = 2.0 * math.pi * box / BOXES
        centre = torch.tensor([0.35 * math.cos(angle), 0.35 * math.sin(angle), 0.04],
                              dtype=torch.float64)
        side = max(0.06 + 0.01 * box, 0.08) + 4 * VOXEL
        yaw = 0.4 * box
        local = unit * side
        cy, sy = math.cos(yaw), math.sin(yaw)
        world = torch.stack([centre[0] + cy * local[:, 0] - sy * local[:, 1],
                             centre[1] + sy * local[:, 0] + cy * local[:, 1],
                             centre[2] + local[:, 2]], 1)
        out.append((world - ORIGIN) / VOXEL - 0.5)
    return torch.cat(out).float()


def bench_roi():
    X, Y, Z = DIMS
    grid = normalised_grid(roi_points())
    volume = torch.randn(1, FEATURE_CHANNELS, Z, Y, X)
    occupancy = torch.rand(1, 1, Z, Y, X)
    d_crops = torch.randn(FEATURE_CHANNELS, BOXES * CELLS ** 3)

    def pool(vol):
        crops = F.grid_sample(vol, grid, align_corners=True).reshape(FEATURE_CHANNELS, -1)
        full = F.grid_sample(occupancy, grid, align_corners=True).reshape(1, -1) >= 0.5
        return crops * full

    with torch.no_grad():
        torch_common.report("roi_pool_7x8x8x8_c64_fwd", torch_common.median_ms(lambda: pool(volume), 3, 20))
    vol = volume.clone().requires_grad_()

    def forward_backward():
        vol.grad = None
        (pool(vol) * d_crops).sum().backward()

    torch_common.report("roi_pool_7x8x8x8_c64_fwdbwd", torch_common.median_ms(forward_backward, 3, 20))


def main():
    torch_common.setup()
    for side, C in ((32, 3), (32, FEATURE_CHANNELS), (128, 3)):
        if C == 3:
            torch_common.report(f"rays_5x{side}x{side}_s{SAMPLES}",
                                torch_common.median_ms(lambda: all_rays(side), warmup=1, repeats=5))
        bench_render(side, C)
    bench_roi()


if __name__ == "__main__":
    main()
