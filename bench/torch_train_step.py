"""PyTorch peer of bench_train_step.c: one stage-1 training step of the
default (cpu) configuration, the same work on the same sizes.

Inputs are random, because the step's cost does not depend on them: frozen
encoder maps shaped as MobileNetV2 block_2_add gives them (24 channels,
stride 4, 32 x 32 cells for 128 x 128 views), and targets at the render
sizes. Cameras sit on a ring 0.8 m from the grid's centre at 30 degrees
elevation, 5 building views and 5 supervising ones between them. One step
is two passes (A builds and B supervises, then the reverse), each:

  lift             project the voxel centres into the 5 building views and
                   average grid_sample(align_corners=True) of their maps
                   over the views that see each centre;
  volume forward   the volume network of scripts/refs/model.py at the cpu
                   sizes (channels 16/32/64, blocks 1/2/3 down and 1/2 up,
                   heads of 32 hidden units, 64 feature channels), train();
  render forward   stratified samples inside the grid, then emission-
                   absorption compositing (softplus, cumsum, exp, expm1) of
                   colour at 64 x 64 and features at 32 x 32 per view, 64
                   samples per ray, one grid_sample of the density stacked
                   onto each volume. The feature render's opacity is the
                   silhouette, and its weights are computed from a detached
                   density, so the feature loss does not reach the density;
  losses           weighted colour MSE (1 on objects, 0.1 on the floor),
                   mask MSE, weighted 1 - cosine, each times 1/2;
  render backward  autograd from the losses to the three volumes;
  volume backward  autograd from the volumes' gradients to the parameters;
then the gradient is clipped to norm 1 and Adam (lr 1e-4, betas (0, 0.999))
steps.

Tuning: torch.set_num_threads(OMP_NUM_THREADS) and OPENBLAS_NUM_THREADS set
to the same count unless given (OpenBLAS is only called from the main
thread, so the two do not oversubscribe the cores). PyTorch 1.13 sends a
3D convolution of batch 1 to oneDNN only when N C D H > 20480, so most of
this network's convolutions would take the slow native path. Every
convolution therefore calls aten::mkldnn_convolution directly, forward and
backward (the input gradient as a convolution with the flipped, transposed
kernel over the zero-upsampled gradient, the weight gradient as a
convolution of the input with the output gradient as the kernel). The
transposed convolutions (kernel 2, stride 2) are one matrix product each.
`--check` compares these against torch.nn.functional on small inputs.

Printed: one BENCH line for the step (median of the timed steps after two
untimed ones) with the flops counted as bench_train_step.c counts them
(convolutions with every kernel tap, linear layers, 2 per multiply-add,
backward twice the forward), and on stderr the mean time of each stage,
the GFLOP and the peak resident memory of the steps (VmHWM, reset through
/proc/self/clear_refs before the first step of the reported memory format,
as bench_train_step.c does).
"""
import os
import sys

THREADS = int(os.environ.get("OMP_NUM_THREADS", "2"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))

import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import torch_common  # noqa: E402

IN_CHANNELS, CHANNELS = 24, (16, 32, 64)
DOWN_BLOCKS, UP_BLOCKS = (1, 2, 3), (1, 2)
HEAD_HIDDEN, FEATURE_CHANNELS, MOMENTUM = 32, 64, 0.1
DIMS = (16, 64, 64)  # D, H, W (grid z, y, x)
ORIGIN, VOXEL = (-0.64, -0.64, 0.0), 0.02
VIEWS, IMAGE_SIDE, STRIDE = 5, 128, 4
FOCAL, DISTANCE, ELEVATION = 106.67, 0.8, math.radians(30.0)
COLOUR_SIZE, FEATURE_SIZE, SAMPLES = 64, 32, 64
FLOOR_WEIGHT, COSINE_EPS = 0.1, 1e-8
STEPS = 3

mkldnn_convolution = torch.ops.aten.mkldnn_convolution


class MkldnnConv3d(torch.autograd.Function):
    """conv3d, kernel 3, padding 1, no bias, stride 1 or 2, on oneDNN both ways."""

    @staticmethod
    def forward(ctx, x, weight, stride):
        ctx.save_for_backward(x, weight)
        ctx.stride = stride
        return mkldnn_convolution(x, weight, None, [1, 1, 1], [stride] * 3, [1, 1, 1], 1)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride = ctx.stride
        d_input = None
        if ctx.needs_input_grad[0]:
            upsampled = grad
            if stride > 1:
                # The input's sizes are even (the network halves them), so the stride-2
                # output grid upsampled by 2 covers the input grid exactly.
                upsampled = grad.new_zeros(x.shape[:1] + grad.shape[1:2] + x.shape[2:])
                upsampled[:, :, ::stride, ::stride, ::stride] = grad
            flipped = weight.transpose(0, 1).flip(2, 3, 4).contiguous()
            d_input = mkldnn_convolution(upsampled, flipped, None, [1, 1, 1], [1, 1, 1], [1, 1, 1], 1)
        # d_weight[o, i, k] = sum_j grad[o, j] x_padded[i, k + stride j]: a convolution of the
        # input (channels as the batch) with the gradient as a kernel dilated by the stride.
        d_weight = mkldnn_convolution(x.transpose(0, 1).contiguous(), grad.transpose(0, 1).contiguous(), None,
                                      [1, 1, 1], [1, 1, 1], [stride] * 3, 1)
        d_weight = d_weight[:, :, :3, :3, :3].transpose(0, 1)
        return d_input, d_weight, None


class Conv3d(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        return MkldnnConv3d.apply(x, self.weight, self.stride)


class ConvTranspose3d(nn.Module):
    """Kernel 2, stride 2, with bias, as one matrix product over the voxels."""

    def __init__(self, cin, cout):
        super().__init__()
        reference = nn.ConvTranspose3d(cin, cout, 2, stride=2)
        self.weight = nn.Parameter(reference.weight.detach().clone())  # (cin, cout, 2, 2, 2)
        self.bias = nn.Parameter(reference.bias.detach().clone())

    def forward(self, x):
        n, cin, d, h, w = x.shape
        cout = self.weight.shape[1]
        rows = x.permute(0, 2, 3, 4, 1).reshape(-1, cin)
        y = (rows @ self.weight.reshape(cin, -1)).reshape(n, d, h, w, cout, 2, 2, 2)
        y = y.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(n, cout, 2 * d, 2 * h, 2 * w)
        return y + self.bias[None, :, None, None, None]


class Block(nn.Module):
    """conv, batchnorm, ReLU, conv, batchnorm, + input, ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = Conv3d(channels, channels, 1)
        self.bn1 = nn.BatchNorm3d(channels, momentum=MOMENTUM)
        self.conv2 = Conv3d(channels, channels, 1)
        self.bn2 = nn.BatchNorm3d(channels, momentum=MOMENTUM)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + x)


def conv_bn_relu(cin, cout, stride):
    return nn.Sequential(Conv3d(cin, cout, stride), nn.BatchNorm3d(cout, momentum=MOMENTUM), nn.ReLU())


def head(cin, hidden, cout):
    return nn.Sequential(nn.Linear(cin, hidden), nn.LeakyReLU(0.01), nn.Linear(hidden, cout))


class VolumeNet(nn.Module):
    """scripts/refs/model.py's VolumeNet at the cpu configuration's sizes."""

    def __init__(self):
        super().__init__()
        levels = len(CHANNELS)
        self.stem = conv_bn_relu(IN_CHANNELS, CHANNELS[0], 1)
        self.down = nn.ModuleList(
            nn.Sequential(*(Block(CHANNELS[level]) for _ in range(DOWN_BLOCKS[level]))) for level in range(levels))
        self.down_conv = nn.ModuleList(conv_bn_relu(CHANNELS[level], CHANNELS[level + 1], 2)
                                       for level in range(levels - 1))
        self.up_conv = nn.ModuleList(ConvTranspose3d(CHANNELS[level + 1], CHANNELS[level])
                                     for level in range(levels - 1))
        self.up = nn.ModuleList(
            nn.Sequential(*(Block(CHANNELS[level]) for _ in range(UP_BLOCKS[level]))) for level in range(levels - 1))
        self.density_head = head(CHANNELS[0], HEAD_HIDDEN, 1)
        self.colour_head = head(CHANNELS[0], HEAD_HIDDEN, 3)
        self.feature_head = head(CHANNELS[0], HEAD_HIDDEN, FEATURE_CHANNELS)

    def forward(self, x):
        """x is (1, C, D, H, W); returns the heads' outputs channels-last."""
        levels = len(CHANNELS)
        x = self.stem(x)
        skips = []
        for level in range(levels):
            x = self.down[level](x)
            if level < levels - 1:
                skips.append(x)
                x = self.down_conv[level](x)
        for level in range(levels - 2, -1, -1):
            x = self.up[level](self.up_conv[level](x) + skips[level])
        trunk = x.permute(0, 2, 3, 4, 1)
        return self.density_head(trunk)[..., 0], torch.sigmoid(self.colour_head(trunk)), self.feature_head(trunk)


def volume_macs():
    """Return the multiply-adds of one forward, counted as od_volume_net_forward_macs does."""
    d, h, w = DIMS
    voxels = [d * h * w >> (3 * level) for level in range(len(CHANNELS))]
    macs = voxels[0] * IN_CHANNELS * CHANNELS[0] * 27
    for level, c in enumerate(CHANNELS):
        blocks = DOWN_BLOCKS[level] + (UP_BLOCKS[level] if level < len(UP_BLOCKS) else 0)
        macs += blocks * 2 * voxels[level] * c * c * 27
        if level < len(CHANNELS) - 1:
            macs += voxels[level + 1] * c * CHANNELS[level + 1] * 27
            macs += voxels[level + 1] * CHANNELS[level + 1] * c * 8
    macs += voxels[0] * HEAD_HIDDEN * (3 * CHANNELS[0] + 1 + 3 + FEATURE_CHANNELS)
    return macs


def camera(azimuth):
    """Return the rotation (3, 3, world to camera) and the centre of a camera on the ring."""
    target = torch.tensor([0.0, 0.0, 0.16], dtype=torch.float64)
    eye = target + DISTANCE * torch.tensor([math.cos(ELEVATION) * math.cos(azimuth),
                                            math.cos(ELEVATION) * math.sin(azimuth),
                                            math.sin(ELEVATION)], dtype=torch.float64)
    forward = (target - eye) / (target - eye).norm()
    right = torch.tensor([forward[1], -forward[0], 0.0], dtype=torch.float64)
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    return torch.stack([right, down, forward]), eye


def lift_grid(cameras):
    """Return the grid_sample coordinates (V, 1, voxels, 2) of every voxel centre
    in each view's encoder map, and which views see it (V, voxels)."""
    d, h, w = DIMS
    k, j, i = torch.meshgrid(torch.arange(d), torch.arange(h), torch.arange(w), indexing="ij")
    centres = torch.stack([ORIGIN[0] + (i + 0.5) * VOXEL, ORIGIN[1] + (j + 0.5) * VOXEL,
                           ORIGIN[2] + (k + 0.5) * VOXEL], -1).reshape(-1, 3).double()
    cells = IMAGE_SIDE // STRIDE
    focal = FOCAL / STRIDE
    centre = ((IMAGE_SIDE - 1) / 2.0 + 0.5) / STRIDE - 0.5
    grids, valid = [], []
    for rotation, eye in cameras:
        local = (centres - eye) @ rotation.T
        depth = local[:, 2]
        u = focal * local[:, 0] / depth + centre
        v = focal * local[:, 1] / depth + centre
        valid.append((depth > 1e-6) & (u >= 0) & (u <= cells - 1) & (v >= 0) & (v <= cells - 1))
        grids.append(torch.stack([2 * u / (cells - 1) - 1, 2 * v / (cells - 1) - 1], -1)[None])
    return torch.stack(grids).float(), torch.stack(valid).float()


def lift(maps, cameras):
    """Average the building views' maps (V, C, cells, cells) at the voxel centres
    into (1, C, D, H, W). The projection is recomputed every step, as the C side does."""
    grid, valid = lift_grid(cameras)
    sampled = F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, :, 0]
    total = (sampled * valid[:, None]).sum(0)
    count = valid.sum(0).clamp(min=1)
    return (total / count).reshape(1, IN_CHANNELS, *DIMS)


class Rays:
    """Pixel rays of one render size for a list of cameras, clipped to the grid's box."""

    def __init__(self, cameras, side):
        d, h, w = DIMS
        scale = side / IMAGE_SIDE
        focal = FOCAL * scale
        centre = ((IMAGE_SIDE - 1) / 2.0 + 0.5) * scale - 0.5
        low = torch.full((3,), -0.5, dtype=torch.float64)
        high = torch.tensor([w, h, d], dtype=torch.float64) - 0.5
        eyes, directions, nears, steps = [], [], [], []
        for rotation, eye in cameras:
            v, u = torch.meshgrid(torch.arange(side, dtype=torch.float64),
                                  torch.arange(side, dtype=torch.float64), indexing="ij")
            local = torch.stack([(u.reshape(-1) - centre) / focal, (v.reshape(-1) - centre) / focal,
                                 torch.ones(side * side, dtype=torch.float64)], 1)
            direction = local @ rotation
            direction = direction / direction.norm(dim=1, keepdim=True)
            start = (eye - torch.tensor(ORIGIN, dtype=torch.float64)) / VOXEL - 0.5
            t0, t1 = (low - start) / direction, (high - start) / direction
            near = torch.clamp(torch.minimum(t0, t1).max(dim=1).values, min=0.0)
            far = torch.maximum(t0, t1).min(dim=1).values
            hit = far > near
            eyes.append(start.expand(side * side, 3))
            directions.append(direction)
            nears.append(torch.where(hit, near, torch.zeros_like(near)))
            steps.append(torch.where(hit, (far - near) / SAMPLES, torch.zeros_like(far)))
        self.eye = torch.cat(eyes).float()
        self.direction = torch.cat(directions).float()
        self.near = torch.cat(nears).float()
        self.step = torch.cat(steps).float()
        self.delta = self.step[:, None].expand(-1, SAMPLES).contiguous()

    def sample(self):
        """Draw stratified points (R, S, 3) in voxel coordinates and steps (R, S) in voxel edges."""
        offsets = torch.arange(SAMPLES, dtype=torch.float32) + torch.rand(self.near.shape[0], SAMPLES)
        t = self.near[:, None] + offsets * self.step[:, None]
        points = self.eye[:, None, :] + t[..., None] * self.direction[:, None, :]
        missed = (self.step == 0)[:, None, None]
        return torch.where(missed, torch.full_like(points, -2.0), points), self.delta


def normalised_grid(points):
    d, h, w = DIMS
    scale = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1), 2.0 / (d - 1)])
    return (points.reshape(-1, 3) * scale - 1.0).reshape(1, -1, 1, 1, 3)


def render(density, volume, points, delta, density_reaches_features=True):
    """Render a raw density (D, H, W) and a volume (D, H, W, C), channels-last.
    Returns the rendered (R, C) and the opacity (R)."""
    R, S = delta.shape
    C = volume.shape[-1]
    stacked = torch.cat([density[..., None], volume], -1).permute(3, 0, 1, 2)[None]
    samples = F.grid_sample(stacked, normalised_grid(points), mode="bilinear", padding_mode="zeros",
                            align_corners=True).reshape(C + 1, R, S)
    tau = F.softplus(samples[0]) * delta
    opacity = -torch.expm1(-tau.sum(dim=1))
    if not density_reaches_features:
        tau = tau.detach()
    depth = torch.cumsum(tau, dim=1) - tau
    weights = torch.exp(-depth) * -torch.expm1(-tau)
    return torch.einsum("rs,crs->rc", weights, samples[1:]), opacity


def weighted_mse(prediction, target, weight):
    return (((prediction - target) ** 2).sum(1) * weight).sum() / (weight.sum() * prediction.shape[1])


def weighted_cosine(prediction, target, weight):
    cosine = F.cosine_similarity(prediction, target, dim=1, eps=COSINE_EPS)
    return ((1.0 - cosine) * weight).sum() / weight.sum()


class Pass:
    """The fixed inputs of one pass: building views' maps and cameras, supervising views' rays and targets."""

    def __init__(self, build_cameras, supervise_cameras):
        cells = IMAGE_SIDE // STRIDE
        self.build_cameras = build_cameras
        self.maps = torch.randn(VIEWS, IN_CHANNELS, cells, cells).clamp(min=0)
        self.colour_rays = Rays(supervise_cameras, COLOUR_SIZE)
        self.feature_rays = Rays(supervise_cameras, FEATURE_SIZE)
        rc, rf = VIEWS * COLOUR_SIZE ** 2, VIEWS * FEATURE_SIZE ** 2
        self.colour = torch.rand(rc, 3)
        self.colour_weight = torch.where(torch.rand(rc) < 0.2, 1.0, FLOOR_WEIGHT)
        self.mask = (torch.rand(rf) < 0.2).float()
        self.teacher = torch.randn(rf, FEATURE_CHANNELS)
        self.teacher_weight = torch.where(self.mask > 0, 1.0, FLOOR_WEIGHT)


STAGES = ("lift (2 passes)", "volume forward", "render forward", "losses", "render backward",
          "volume backward", "clip + Adam")


def run_pass(model, p, times, memory_format):
    t0 = time.perf_counter()
    volume_in = lift(p.maps, p.build_cameras).contiguous(memory_format=memory_format)
    t1 = time.perf_counter()
    times[0] += t1 - t0

    density, colour, features = model(volume_in)
    t0 = time.perf_counter()
    times[1] += t0 - t1

    outputs = [density[0], colour[0], features[0]]
    leaves = [o.detach().requires_grad_() for o in outputs]
    colour_points, colour_delta = p.colour_rays.sample()
    feature_points, feature_delta = p.feature_rays.sample()
    rendered_colour, _ = render(leaves[0], leaves[1], colour_points, colour_delta)
    rendered_features, opacity = render(leaves[0], leaves[2], feature_points, feature_delta,
                                        density_reaches_features=False)
    t1 = time.perf_counter()
    times[2] += t1 - t0

    losses = (weighted_mse(rendered_colour, p.colour, p.colour_weight),
              F.mse_loss(opacity, p.mask),
              weighted_cosine(rendered_features, p.teacher, p.teacher_weight))
    total = 0.5 * (losses[0] + losses[1] + losses[2])
    t0 = time.perf_counter()
    times[3] += t0 - t1

    total.backward()
    t1 = time.perf_counter()
    times[4] += t1 - t0

    torch.autograd.backward(outputs, [leaf.grad for leaf in leaves])
    times[5] += time.perf_counter() - t1
    return [float(loss) for loss in losses]


def step(model, optimizer, passes, times, memory_format):
    optimizer.zero_grad(set_to_none=True)
    sums = [0.0, 0.0, 0.0]
    for p in passes:
        for i, loss in enumerate(run_pass(model, p, times, memory_format)):
            sums[i] += 0.5 * loss
    t0 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    times[6] += time.perf_counter() - t0
    return sums


def reset_peak_memory():
    """Reset the peak resident memory (VmHWM) to the current one; Linux 4.0 and later."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def peak_memory_mib():
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def time_steps(memory_format, steps):
    torch.manual_seed(0)
    model = VolumeNet().to(memory_format=memory_format)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.0, 0.999), eps=1e-8)
    set_a = [camera(2 * math.pi * v / VIEWS) for v in range(VIEWS)]
    set_b = [camera(2 * math.pi * (v + 0.5) / VIEWS) for v in range(VIEWS)]
    passes = (Pass(set_a, set_b), Pass(set_b, set_a))
    times = [0.0] * len(STAGES)
    peak_reset = reset_peak_memory()
    for _ in range(2):
        step(model, optimizer, passes, times, memory_format)
    times = [0.0] * len(STAGES)
    durations = []
    for _ in range(steps):
        start = time.perf_counter()
        losses = step(model, optimizer, passes, times, memory_format)
        durations.append((time.perf_counter() - start) * 1e3)
    return statistics.median(durations), [t / steps for t in times], losses, (peak_reset, peak_memory_mib())


def check():
    """Compare the oneDNN convolutions and the matrix-product transposed
    convolution with torch.nn.functional, forward and backward."""
    torch.manual_seed(1)
    worst = 0.0
    for stride, memory_format in ((1, torch.contiguous_format), (2, torch.contiguous_format),
                                  (1, torch.channels_last_3d), (2, torch.channels_last_3d)):
        x = torch.randn(1, 5, 4, 8, 6).contiguous(memory_format=memory_format).requires_grad_()
        weight = torch.randn(7, 5, 3, 3, 3, requires_grad=True)
        y = MkldnnConv3d.apply(x, weight, stride)
        g = torch.randn_like(y)
        got = [y] + list(torch.autograd.grad(y, (x, weight), g))
        y_ref = F.conv3d(x, weight, stride=stride, padding=1)
        expected = [y_ref] + list(torch.autograd.grad(y_ref, (x, weight), g))
        worst = max(worst, max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(got, expected)))
    up = ConvTranspose3d(6, 4)
    x = torch.randn(1, 6, 2, 3, 4, requires_grad=True)
    y = up(x)
    g = torch.randn_like(y)
    got = [y] + list(torch.autograd.grad(y, (x, up.weight, up.bias), g))
    y_ref = F.conv_transpose3d(x, up.weight, up.bias, stride=2)
    expected = [y_ref] + list(torch.autograd.grad(y_ref, (x, up.weight, up.bias), g))
    worst = max(worst, max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(got, expected)))
    print(f"torch_train_step: largest relative difference from torch.nn.functional {worst:.2g}", file=sys.stderr)
    return worst < 1e-5


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--check":
        sys.exit(0 if check() else 1)
    threads = torch_common.setup()
    results = {}
    for label, memory_format in (("contiguous", torch.contiguous_format),
                                 ("channels_last_3d", torch.channels_last_3d)):
        results[label] = time_steps(memory_format, STEPS)
    best = min(results, key=lambda label: results[label][0])
    ms, parts, losses, (peak_reset, peak_mib) = results[best]
    flops = 3.0 * 2.0 * 2 * volume_macs()
    torch_common.report("train_step_stage1", ms, flops)

    others = ", ".join(f"{label} {result[0]:.1f} ms" for label, result in results.items())
    print(f"torch_train_step: {others}; reporting {best} (torch {torch.__version__}, {threads} threads, "
          f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}, "
          f"mkldnn {torch.backends.mkldnn.enabled})", file=sys.stderr)
    print(f"  losses colour {losses[0]:.4f} mask {losses[1]:.4f} feature {losses[2]:.4f}", file=sys.stderr)
    for name, seconds in zip(STAGES, parts):
        print(f"  {name:<22} {1e3 * seconds:8.1f} ms", file=sys.stderr)
    print(f"  {'step':<22} {ms:8.1f} ms (median), {flops * 1e-9:.1f} GFLOP, {flops * 1e-6 / ms:.1f} GFLOP/s",
          file=sys.stderr)
    scope = "during the steps" if peak_reset else "in the whole run (/proc/self/clear_refs is not writable)"
    print(f"  {'peak memory':<22} {peak_mib:8.1f} MiB resident at most {scope} (VmHWM)", file=sys.stderr)


if __name__ == "__main__":
    main()
