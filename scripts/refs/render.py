"""Reference values for volume rendering and RoI pooling
(src/geometry/rays.c, src/nn/render.c, src/nn/roi_pool.c).

Everything is float64 with autograd:
- rays: one ray per pixel of a render whose K is scaled as od_camera_resize
  does (fx sx, (cx + 0.5) sx - 0.5), through the pixel centre (j, i). The
  ray is clipped to the grid's box in voxel coordinates ([-0.5, size - 0.5]
  per axis, from the camera centre on) and split into S equal strata, with
  one sample at each middle. delta is the stratum length in voxel edges.
  A ray that misses gets delta 0 and points at -2 voxels.
- compositing: sigma = softplus(x), alpha = -expm1(-sigma delta),
  T = exp(-exclusive cumsum), w = T alpha, feature = sum w f,
  opacity = -expm1(-sum tau). The "detached" gradients render the features
  with the density detached, as the feature loss does.
- volumes: raw density (D, H, W) and features (D, H, W, C) sampled by a
  hand-written trilinear interpolation (voxel centres at integers, zero
  outside), the same interpolation that scripts/refs/trilinear.py checks
  against grid_sample.
- RoI pooling: the cell centres of each oriented box in the box frame,
  rotated by yaw, sampled trilinearly; a cell is empty when the sampled
  occupancy is below the threshold, and empty cells crop as zero and pass
  no gradient.

Cameras, grids and inputs are rounded to float32 first, because the files
store float32 and the C code reads them back.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from refs import st

MISS = -2.0


def _f32(x):
    return torch.as_tensor(x, dtype=torch.float64).float().double()


def _look_at(position, target):
    """World-to-camera 4x4 in OpenCV axes (x right, y down, z forward)."""
    forward = target - position
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ position
    return T


def rays(K, pose, image, render, origin, size, dims, samples):
    """K (3, 3), pose (4, 4) world-to-camera, image and render (width,
    height), origin (3), size, dims (X, Y, Z). Returns points (R, S, 3) in
    voxel coordinates and delta (R, S)."""
    width, height = render
    sx, sy = width / image[0], height / image[1]
    Kr = K.clone()
    Kr[0, 0] *= sx
    Kr[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    Kr[1, 1] *= sy
    Kr[1, 2] = (K[1, 2] + 0.5) * sy - 0.5

    R, t = pose[:3, :3], pose[:3, 3]
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                          torch.arange(width, dtype=torch.float64), indexing="ij")
    pixels = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(width * height, dtype=torch.float64)], 1)
    directions = torch.linalg.solve(Kr, pixels.T).T @ R  # rows: R^T K^-1 p
    directions = directions / directions.norm(dim=1, keepdim=True)

    # The slab test in voxel coordinates.
    eye = (-R.T @ t - origin) / size - 0.5
    low = torch.full((3,), -0.5, dtype=torch.float64)
    high = torch.tensor(dims, dtype=torch.float64) - 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (low - eye) / directions
        t1 = (high - eye) / directions
    near = torch.clamp(torch.minimum(t0, t1).max(dim=1).values, min=0.0)
    far = torch.maximum(t0, t1).min(dim=1).values
    hit = far > near

    step = torch.where(hit, (far - near) / samples, torch.zeros_like(far))
    s = torch.arange(samples, dtype=torch.float64) + 0.5
    t = near[:, None] + s[None, :] * step[:, None]
    points = eye + t[..., None] * directions[:, None, :]
    points = torch.minimum(torch.maximum(points, low), high)
    points = torch.where(hit[:, None, None], points, torch.full_like(points, MISS))
    delta = step[:, None].expand(-1, samples).clone()
    return points, delta


def composite(x, features, delta, detach_density_for_features=False):
    """x and delta (R, S), features (R, S, C). Returns feature (R, C),
    opacity (R), weights (R, S)."""
    def weights_of(raw):
        tau = F.softplus(raw, beta=1.0, threshold=1e9) * delta
        depth = torch.cumsum(tau, dim=1) - tau  # exclusive: in front of each sample
        return torch.exp(-depth) * -torch.expm1(-tau), tau.sum(dim=1)

    w, total = weights_of(x)
    w_feature = weights_of(x.detach())[0] if detach_density_for_features else w
    feature = (w_feature[..., None] * features).sum(dim=1)
    opacity = -torch.expm1(-total)
    return feature, opacity, w


def trilinear(volume, points):
    """volume (D, H, W, C), points (P, 3) as (x, y, z) voxel coordinates.
    Returns (P, C); differentiable in the volume."""
    D, H, W, C = volume.shape
    below = torch.floor(points)
    frac = points - below
    below = below.long()
    out = torch.zeros(points.shape[0], C, dtype=torch.float64)
    for corner in range(8):
        offset = torch.tensor([corner & 1, (corner >> 1) & 1, corner >> 2])
        index = below + offset
        weight = torch.ones(points.shape[0], dtype=torch.float64)
        for axis in range(3):
            weight = weight * (frac[:, axis] if offset[axis] else 1.0 - frac[:, axis])
        x, y, z = index[:, 0], index[:, 1], index[:, 2]
        inside = (x >= 0) & (x < W) & (y >= 0) & (y < H) & (z >= 0) & (z < D)
        values = volume[z.clamp(0, D - 1), y.clamp(0, H - 1), x.clamp(0, W - 1)]
        out = out + (weight * inside)[:, None] * values
    return out


def _camera(rng, centre, image, inside=False):
    width, height = image
    if inside:
        position = centre + np.array([0.013, -0.021, 0.007])
        target = position + np.array([1.0, 0.4, -0.2])
    else:
        angle = rng.uniform(0, 2 * np.pi)
        elevation = rng.uniform(0.4, 0.9)
        distance = rng.uniform(0.45, 0.6)
        position = centre + distance * np.array([np.cos(angle) * np.cos(elevation),
                                                 np.sin(angle) * np.cos(elevation), np.sin(elevation)])
        target = centre + rng.normal(0, 0.02, 3)
    # Narrow enough that most rays cross the grid, wide enough that the
    # border rays miss it.
    focal = rng.uniform(1.6, 2.0) * width
    K = np.array([[focal, 0, (width - 1) / 2 + rng.uniform(-2, 2)],
                  [0, focal * rng.uniform(0.95, 1.05), (height - 1) / 2 + rng.uniform(-2, 2)],
                  [0, 0, 1]])
    return _f32(K), _f32(_look_at(position, target))


def _grid(dims, size=0.02):
    X, Y, Z = dims
    origin = _f32(np.array([-X * size / 2 + 0.003, -Y * size / 2 - 0.004, 0.0]))
    return origin, float(np.float32(size))


def _rays_case(rng, path, dims, image, render, samples, inside):
    origin, size = _grid(dims)
    centre = origin.numpy() + np.array(dims) * size / 2
    K, pose = _camera(rng, centre, image, inside)
    points, delta = rays(K, pose, image, render, origin, size, dims, samples)
    hits = int((delta[:, 0] > 0).sum())
    print(f"{os.path.basename(path)}: {hits} of {delta.shape[0]} rays hit the grid")
    assert 0 < hits and (inside or hits < delta.shape[0])
    st.save(path, {"origin": origin, "voxel_size": np.array([size]), "dims": np.array(dims, dtype=np.int64),
                   "image_size": np.array(image, dtype=np.int64),
                   "render_size": np.array(render, dtype=np.int64),
                   "samples": np.array([samples], dtype=np.int64),
                   "K": K, "pose": pose, "points": points, "delta": delta})


def _composite_case(path, R, S, C, generator):
    x = torch.randn(R, S, generator=generator, dtype=torch.float64) * 3.0
    # Rows with extremes: sigma near 0, very large sigma, zero steps (a ray
    # that missed), one opaque sample in the middle.
    x[0] = -30.0
    x[1] = 60.0
    x[2, S // 2] = 200.0
    x[3] = torch.linspace(-40.0, 40.0, S, dtype=torch.float64)
    x = _f32(x)
    delta = _f32(torch.rand(R, 1, generator=generator, dtype=torch.float64) * 1.5 + 0.05).expand(R, S).clone()
    delta[4] = 0.0
    delta[5] = _f32(torch.rand(S, generator=generator, dtype=torch.float64))
    features = _f32(torch.randn(R, S, C, generator=generator, dtype=torch.float64))
    d_feature = _f32(torch.randn(R, C, generator=generator, dtype=torch.float64))
    d_opacity = _f32(torch.randn(R, generator=generator, dtype=torch.float64))

    tensors = {"density": x, "delta": delta, "features": features, "d_feature": d_feature,
               "d_opacity": d_opacity}
    for suffix, detach in (("", False), ("_detached", True)):
        xg = x.clone().requires_grad_()
        fg = features.clone().requires_grad_()
        feature, opacity, w = composite(xg, fg, delta, detach)
        loss = (feature * d_feature).sum() + (opacity * d_opacity).sum()
        loss.backward()
        assert torch.isfinite(xg.grad).all()
        assert torch.isfinite(fg.grad).all()
        tensors["d_density" + suffix] = xg.grad
        tensors["d_features" + suffix] = fg.grad
        tensors.update({"feature": feature.detach(), "opacity": opacity.detach(), "weights": w.detach()})
    st.save(path, tensors, {"R": R, "S": S, "C": C})


def _volume_case(rng, path, dims, image, render, samples, C, generator):
    X, Y, Z = dims
    origin, size = _grid(dims)
    centre = origin.numpy() + np.array(dims) * size / 2
    K, pose = _camera(rng, centre, image)
    points, delta = rays(K, pose, image, render, origin, size, dims, samples)
    points, delta = _f32(points), _f32(delta)
    R = delta.shape[0]
    density = torch.randn(Z, Y, X, generator=generator, dtype=torch.float64) * 2.0 - 1.0
    density[Z // 2, Y // 2, X // 3] = 40.0  # an opaque voxel
    density[:, :, -1] = -25.0  # a nearly empty wall
    density = _f32(density)
    feature_volume = _f32(torch.randn(Z, Y, X, C, generator=generator, dtype=torch.float64))
    d_feature = _f32(torch.randn(R, C, generator=generator, dtype=torch.float64))
    d_opacity = _f32(torch.randn(R, generator=generator, dtype=torch.float64))

    tensors = {"density_volume": density, "feature_volume": feature_volume, "points": points,
               "delta": delta, "d_feature": d_feature, "d_opacity": d_opacity}
    flat = points.reshape(-1, 3)
    for suffix, detach in (("", False), ("_detached", True)):
        dv = density.clone().requires_grad_()
        fv = feature_volume.clone().requires_grad_()
        x = trilinear(dv[..., None], flat).reshape(R, samples)
        f = trilinear(fv, flat).reshape(R, samples, C)
        feature, opacity, _ = composite(x, f, delta, detach)
        ((feature * d_feature).sum() + (opacity * d_opacity).sum()).backward()
        tensors["d_density_volume" + suffix] = dv.grad
        tensors["d_feature_volume" + suffix] = fv.grad
        tensors.update({"feature": feature.detach(), "opacity": opacity.detach()})
    print(f"{os.path.basename(path)}: opacity range {tensors['opacity'].min():.3g} .. {tensors['opacity'].max():.3g}")
    st.save(path, tensors, {"D": Z, "H": Y, "W": X, "C": C, "R": R, "S": samples})


def roi_points(boxes, origin, size, cells):
    """boxes (B, 7) as centre, size, yaw. Returns (B, cells^3, 3) voxel coordinates."""
    a, b, c = torch.meshgrid(*(torch.arange(cells, dtype=torch.float64),) * 3, indexing="ij")
    unit = torch.stack([c.reshape(-1), b.reshape(-1), a.reshape(-1)], 1)
    unit = (unit + 0.5) / cells - 0.5  # (cells^3, 3) as (x, y, z) in the box frame
    out = []
    for box in boxes:
        local = unit * box[3:6]
        cy, sy = torch.cos(box[6]), torch.sin(box[6])
        world = torch.stack([box[0] + cy * local[:, 0] - sy * local[:, 1],
                             box[1] + sy * local[:, 0] + cy * local[:, 1],
                             box[2] + local[:, 2]], 1)
        out.append((world - origin) / size - 0.5)
    return torch.stack(out)


def _roi_case(path, dims, C, cells, threshold, generator):
    X, Y, Z = dims
    origin, size = _grid(dims)
    boxes = torch.tensor([
        [0.004, -0.006, 0.05, 0.09, 0.06, 0.07, 0.3],      # inside
        [0.07, 0.05, 0.04, 0.10, 0.08, 0.09, -1.2],        # partly outside the grid
        [-0.03, 0.02, 0.03, 0.05, 0.05, 0.05, 2.9],        # small, rotated
    ], dtype=torch.float64)
    boxes = _f32(boxes)

    volume = _f32(torch.randn(Z, Y, X, C, generator=generator, dtype=torch.float64))
    occupancy = _f32(torch.rand(Z, Y, X, generator=generator, dtype=torch.float64))
    points = _f32(roi_points(boxes, origin, size, cells)).reshape(-1, 3)
    B = boxes.shape[0]
    vg = volume.clone().requires_grad_()
    crops = trilinear(vg, points)
    sampled = trilinear(occupancy[..., None], points)[:, 0]
    mask = (sampled >= threshold).double()
    masked = crops * mask[:, None]

    d_crops = _f32(torch.randn(B * cells ** 3, C, generator=generator, dtype=torch.float64))
    (masked * d_crops).sum().backward(retain_graph=True)
    d_volume_masked = vg.grad.clone()
    vg.grad = None
    (crops * d_crops).sum().backward()

    empty = int((mask == 0).sum())
    print(f"{os.path.basename(path)}: {empty} of {mask.numel()} cells empty")
    assert 0 < empty < mask.numel()
    # Cells whose occupancy lies within float32 rounding of the threshold
    # could flip between float32 and float64; the case must have none.
    assert (sampled - threshold).abs().min() > 1e-5
    st.save(path, {"origin": origin, "voxel_size": np.array([size]), "dims": np.array(dims, dtype=np.int64),
                   "boxes": boxes, "volume": volume, "occupancy": occupancy, "points": points,
                   "crops": crops.detach(), "crops_masked": masked.detach(), "mask": mask,
                   "d_crops": d_crops, "d_volume": vg.grad, "d_volume_masked": d_volume_masked},
            {"B": B, "C": C, "cells": cells, "threshold": repr(threshold)})


def generate(out_dir):
    path = lambda name: os.path.join(out_dir, f"render_{name}.safetensors")  # noqa: E731
    rng = np.random.default_rng(7)
    generator = torch.Generator().manual_seed(7)
    _rays_case(rng, path("rays"), (11, 9, 5), (48, 40), (13, 11), 7, inside=False)
    _rays_case(rng, path("rays_inside"), (9, 10, 6), (33, 27), (9, 7), 5, inside=True)
    _composite_case(path("composite"), R=12, S=17, C=3, generator=generator)
    _composite_case(path("composite_c1"), R=7, S=1, C=1, generator=generator)
    _volume_case(rng, path("volume"), (7, 6, 5), (40, 34), (11, 9), 9, 5, generator)
    _roi_case(path("roi"), (9, 8, 6), 3, 5, 0.5, generator)
