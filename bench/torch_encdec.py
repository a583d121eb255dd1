"""PyTorch peer of bench_encdec.c: one training step (forward and backward)
of the default-size 3D encoder-decoder, the same architecture layer by
layer (see the comment at the top of bench_encdec.c). It runs in both
memory formats (contiguous and channels_last_3d) and reports the faster
one; the other goes to stderr.

With --export PATH it instead runs one step in float64 and writes the
input, d_output, output, the skip tensors' gradients and every parameter
with its gradient to PATH (safetensors, activations channels-last).
`bench_encdec --check PATH` reads that file to check that both sides
build the same network."""
import os
import sys

import torch
from torch import nn

import torch_common

CHANNELS = (16, 32, 64)
SIZES = ((16, 64, 64), (8, 32, 32), (4, 16, 16))
DOWN_BLOCKS = (1, 2, 3)
UP_BLOCKS = (1, 2)  # levels 0 and 1 on the way up
INPUT_CHANNELS = 32


class Block(nn.Module):
    """conv, batchnorm, ReLU, conv, batchnorm, + input, ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + x)


def conv_bn_relu(cin, cout, stride):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm3d(cout), nn.ReLU())


class EncoderDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.keep_skip_grads = False
        levels = len(CHANNELS)
        self.stem = conv_bn_relu(INPUT_CHANNELS, CHANNELS[0], 1)
        self.down = nn.ModuleList(
            nn.Sequential(*(Block(CHANNELS[level]) for _ in range(DOWN_BLOCKS[level]))) for level in range(levels))
        self.down_conv = nn.ModuleList(conv_bn_relu(CHANNELS[level], CHANNELS[level + 1], 2)
                                       for level in range(levels - 1))
        self.up_conv = nn.ModuleList(nn.ConvTranspose3d(CHANNELS[level + 1], CHANNELS[level], 2, stride=2)
                                     for level in range(levels - 1))
        self.up = nn.ModuleList(
            nn.Sequential(*(Block(CHANNELS[level]) for _ in range(UP_BLOCKS[level]))) for level in range(levels - 1))

    def forward(self, x):
        levels = len(CHANNELS)
        x = self.stem(x)
        skips = []
        for level in range(levels):
            x = self.down[level](x)
            if level < levels - 1:
                skips.append(x)
                x = self.down_conv[level](x)
        if self.keep_skip_grads:  # --export compares the skip tensors' gradients too
            for skip in skips:
                skip.retain_grad()
            self.kept_skips = skips
        for level in range(levels - 2, -1, -1):
            x = self.up[level](self.up_conv[level](x) + skips[level])
        return x


def conv_macs():
    """Multiply-adds of every convolution, as bench_encdec.c counts them."""
    voxels = [d * h * w for d, h, w in SIZES]
    stem = voxels[0] * INPUT_CHANNELS * CHANNELS[0] * 27
    rest = 0
    for level in range(len(CHANNELS)):
        blocks = DOWN_BLOCKS[level] + (UP_BLOCKS[level] if level < len(UP_BLOCKS) else 0)
        rest += blocks * 2 * voxels[level] * CHANNELS[level] ** 2 * 27
        if level < len(CHANNELS) - 1:
            rest += voxels[level + 1] * CHANNELS[level] * CHANNELS[level + 1] * 27  # stride-2 conv
            rest += voxels[level + 1] * CHANNELS[level + 1] * CHANNELS[level] * 8  # transposed conv
    return stem, rest


def time_step(memory_format):
    torch.manual_seed(0)
    model = EncoderDecoder().to(memory_format=memory_format)
    d, h, w = SIZES[0]
    x = torch.randn(1, INPUT_CHANNELS, d, h, w).to(memory_format=memory_format)
    d_out = (torch.randn(1, CHANNELS[0], d, h, w) * 1e-3).to(memory_format=memory_format)

    def step():
        model.zero_grad(set_to_none=True)
        model(x).backward(d_out)

    return torch_common.median_ms(step, warmup=2, repeats=9)


def channels_last(x):
    return x.permute(0, 2, 3, 4, 1).contiguous()


def export(path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from refs import st

    torch.manual_seed(0)
    model = EncoderDecoder().double()
    with torch.no_grad():
        # batchnorm gamma and beta away from 1 and 0, so that a mix-up shows
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.copy_(torch.rand_like(module.weight) + 0.5)
                module.bias.copy_(torch.randn_like(module.bias) * 0.1)
    d, h, w = SIZES[0]
    x = torch.randn(1, INPUT_CHANNELS, d, h, w, dtype=torch.float64)
    d_out = torch.randn(1, CHANNELS[0], d, h, w, dtype=torch.float64)
    model.keep_skip_grads = True
    y = model(x)
    y.backward(d_out)
    tensors = {"input": channels_last(x), "d_output": channels_last(d_out), "output": channels_last(y.detach())}
    for level, skip in enumerate(model.kept_skips):
        tensors[f"grad.skip.{level}"] = channels_last(skip.grad)
    for name, parameter in model.named_parameters():
        tensors[name] = parameter.detach()
        tensors["grad." + name] = parameter.grad
    st.save(path, tensors, {"producer": "bench/torch_encdec.py --export"})
    print(f"torch_encdec: wrote {len(tensors)} tensors to {path}", file=sys.stderr)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--export":
        export(sys.argv[2])
        return
    torch_common.setup()
    results = {"contiguous": time_step(torch.contiguous_format),
               "channels_last_3d": time_step(torch.channels_last_3d)}
    best = min(results, key=results.get)
    others = ", ".join(f"{label} {ms:.1f} ms" for label, ms in results.items())
    print(f"torch_encdec: {others}; reporting {best}", file=sys.stderr)
    stem, rest = conv_macs()
    flops = 2 * (stem + rest) + 2 * (stem + 2 * rest)  # the stem needs no input gradient
    torch_common.report("encdec3d_cpu.fwdbwd", results[best], flops)


if __name__ == "__main__":
    main()
