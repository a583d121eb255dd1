"""PyTorch peer of bench_conv.c: the convolution shapes of the 3D
encoder-decoder, forward and forward + backward, with the same names and
flop counts. Each case runs in both memory formats (contiguous and
channels_last_3d) and reports the faster one; the other goes to stderr."""
import sys

import torch
import torch.nn.functional as F

import torch_common

# name, transposed, in_channels, out_channels, (D, H, W), kernel, stride, padding, bias
CASES = [
    ("conv3d_stem_32to16_16x64x64", False, 32, 16, (16, 64, 64), 3, 1, 1, False),
    ("conv3d_16to16_16x64x64", False, 16, 16, (16, 64, 64), 3, 1, 1, False),
    ("conv3d_s2_16to32_16x64x64", False, 16, 32, (16, 64, 64), 3, 2, 1, False),
    ("conv3d_32to32_8x32x32", False, 32, 32, (8, 32, 32), 3, 1, 1, False),
    ("conv3d_s2_32to64_8x32x32", False, 32, 64, (8, 32, 32), 3, 2, 1, False),
    ("conv3d_64to64_4x16x16", False, 64, 64, (4, 16, 16), 3, 1, 1, False),
    ("convT3d_64to32_4x16x16", True, 64, 32, (4, 16, 16), 2, 2, 0, True),
    ("convT3d_32to16_8x32x32", True, 32, 16, (8, 32, 32), 2, 2, 0, True),
]


def time_case(transposed, cin, cout, size, kernel, stride, padding, bias, memory_format):
    x = torch.randn(1, cin, *size).to(memory_format=memory_format).requires_grad_()
    if transposed:
        w = (torch.randn(cin, cout, kernel, kernel, kernel) * 0.1).requires_grad_()
    else:
        w = (torch.randn(cout, cin, kernel, kernel, kernel) * 0.1).requires_grad_()
    b = torch.zeros(cout, requires_grad=True) if bias else None

    def forward():
        if transposed:
            return F.conv_transpose3d(x, w, b, stride, padding)
        return F.conv3d(x, w, b, stride, padding)

    y = forward()
    d_out = torch.randn_like(y)
    inputs = (x, w, b) if bias else (x, w)

    def run_forward():
        with torch.no_grad():
            forward()

    def run_forward_backward():
        torch.autograd.grad(forward(), inputs, d_out)

    return (torch_common.median_ms(run_forward, warmup=3, repeats=15),
            torch_common.median_ms(run_forward_backward, warmup=3, repeats=15), y.shape)


def main():
    torch_common.setup()
    formats = {"contiguous": torch.contiguous_format, "channels_last_3d": torch.channels_last_3d}
    for name, transposed, cin, cout, size, kernel, stride, padding, bias in CASES:
        results = {}
        for label, memory_format in formats.items():
            results[label] = time_case(transposed, cin, cout, size, kernel, stride, padding, bias, memory_format)
        out_shape = next(iter(results.values()))[2]
        voxels = size[0] * size[1] * size[2] if transposed else out_shape[2] * out_shape[3] * out_shape[4]
        macs = voxels * cin * cout * kernel ** 3
        for index, suffix, flops in ((0, "fwd", 2 * macs), (1, "fwdbwd", 6 * macs)):
            best = min(results, key=lambda label: results[label][index])
            others = ", ".join(f"{label} {results[label][index]:.3f} ms" for label in results)
            print(f"torch_conv: {name}.{suffix}: {others}; reporting {best}", file=sys.stderr)
            torch_common.report(f"{name}.{suffix}", results[best][index], flops)


if __name__ == "__main__":
    main()
