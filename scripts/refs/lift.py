"""Reference values for lifting feature maps into a voxel grid (src/geometry/lift.c).

Each case has a small grid, a few random pinhole cameras around it (one of
them standing inside the grid, so that some voxels lie behind it) and one
random feature map (fh, fw, C) per view at a stride. Every voxel centre is
projected with K scaled to the feature map (fx / s, cx' = (cx + 0.5) / s -
0.5) and sampled with torch.nn.functional.grid_sample(mode="bilinear",
align_corners=True) in float64. A view counts for a voxel when the centre
has depth > 1e-6 and projects into [0, fw - 1] x [0, fh - 1]; the mean is
taken over those views, zero where none sees the voxel.

Cameras and the grid are rounded to float32 before the reference is
computed, because the files store float32 and the C code reads them back.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from refs import st


def _look_at(position, target):
    """World-to-camera 4x4 in OpenCV axes (x right, y down, z forward)."""
    forward = target - position
    forward /= np.linalg.norm(forward)
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-6:
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = -R @ position
    return T


def _lift_reference(origin, size, dims, Ks, poses, features, stride):
    """origin (3), size, dims (X, Y, Z), Ks (V, 3, 3), poses (V, 4, 4),
    features (V, fh, fw, C), all float64. Returns mean (Z, Y, X, C), count (Z, Y, X)."""
    X, Y, Z = dims
    V, fh, fw, C = features.shape
    k, j, i = np.meshgrid(np.arange(Z), np.arange(Y), np.arange(X), indexing="ij")
    centres = np.stack([origin[0] + (i + 0.5) * size, origin[1] + (j + 0.5) * size,
                        origin[2] + (k + 0.5) * size], axis=-1).reshape(-1, 3)
    total = torch.zeros(centres.shape[0], C, dtype=torch.float64)
    count = np.zeros(centres.shape[0], dtype=np.int64)
    for v in range(V):
        K = Ks[v].copy()
        K[0, 0] /= stride
        K[1, 1] /= stride
        K[0, 2] = (K[0, 2] + 0.5) / stride - 0.5
        K[1, 2] = (K[1, 2] + 0.5) / stride - 0.5
        cam = centres @ poses[v][:3, :3].T + poses[v][:3, 3]
        depth = cam[:, 2]
        front = depth > 1e-6
        safe = np.where(front, depth, 1.0)
        pix = cam @ K.T
        u = pix[:, 0] / safe
        w = pix[:, 1] / safe
        valid = front & (u >= 0) & (u <= fw - 1) & (w >= 0) & (w <= fh - 1)
        grid = torch.from_numpy(np.stack([2 * u / (fw - 1) - 1, 2 * w / (fh - 1) - 1], -1))
        grid = torch.where(torch.from_numpy(valid)[:, None], grid, torch.zeros_like(grid))
        fmap = torch.from_numpy(features[v]).permute(2, 0, 1)[None]
        sampled = F.grid_sample(fmap, grid[None, None], mode="bilinear", padding_mode="zeros",
                                align_corners=True)[0, :, 0, :].T
        total += sampled * torch.from_numpy(valid.astype(np.float64))[:, None]
        count += valid
    mean = total / torch.from_numpy(np.maximum(count, 1).astype(np.float64))[:, None]
    return mean.numpy().reshape(Z, Y, X, C), count.reshape(Z, Y, X)


def _case(rng, name, dims, channels, views, image, stride, feature, out_dir):
    X, Y, Z = dims
    size = np.float32(0.03)
    origin = np.array([-X * size / 2, -Y * size / 2, 0.0], dtype=np.float32)
    extent = np.array([X, Y, Z], dtype=np.float64) * float(size)
    centre = origin.astype(np.float64) + extent / 2
    width, height = image
    Ks, poses = [], []
    for v in range(views):
        if v == views - 1:
            # Inside the grid, looking sideways: voxels behind it project
            # through the camera centre and must get nothing from it.
            position = centre + np.array([0.01, -0.02, 0.0])
            target = position + np.array([1.0, 0.3, -0.1])
        else:
            angle = rng.uniform(0, 2 * np.pi)
            elevation = rng.uniform(0.3, 1.0)
            distance = rng.uniform(0.5, 0.9)
            position = centre + distance * np.array([np.cos(angle) * np.cos(elevation),
                                                     np.sin(angle) * np.cos(elevation), np.sin(elevation)])
            target = centre + rng.normal(0, 0.03, 3)
        focal = rng.uniform(1.6, 2.6) * width
        K = np.array([[focal, 0, (width - 1) / 2 + rng.uniform(-2, 2)],
                      [0, focal * rng.uniform(0.95, 1.05), (height - 1) / 2 + rng.uniform(-2, 2)],
                      [0, 0, 1]])
        Ks.append(K)
        poses.append(_look_at(position, target))
    Ks = np.array(Ks).astype(np.float32).astype(np.float64)
    poses = np.array(poses).astype(np.float32).astype(np.float64)
    fh, fw = feature
    features = rng.normal(0, 1, (views, fh, fw, channels)).astype(np.float32).astype(np.float64)
    mean, count = _lift_reference(origin.astype(np.float64), float(size), dims, Ks, poses, features, stride)
    st.save(os.path.join(out_dir, f"lift_{name}.safetensors"), {
        "origin": origin.astype(np.float32),
        "voxel_size": np.array([size], dtype=np.float32),
        "dims": np.array(dims, dtype=np.int64),
        "image_size": np.array(image, dtype=np.int64),
        "stride": np.array([stride], dtype=np.int64),
        "K": Ks, "pose": poses, "features": features,
        "mean": mean, "count": count.astype(np.int32),
    })
    print(f"lift_{name}: views per voxel histogram {np.bincount(count.ravel()).tolist()}")


def generate(out_dir):
    rng = np.random.default_rng(6)
    # Odd sizes everywhere; stride 4 with the map the image's size over 4,
    # stride 3 with a map one cell short of it, stride 1, one channel.
    _case(rng, "stride4", (9, 7, 5), 5, 5, (40, 32), 4, (8, 10), out_dir)
    _case(rng, "stride3", (6, 11, 3), 3, 4, (37, 29), 3, (9, 12), out_dir)
    _case(rng, "stride1", (5, 5, 4), 1, 3, (23, 19), 1, (19, 23), out_dir)
