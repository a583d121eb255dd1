"""PyTorch peer of bench_conv2d.c: MobileNetV2-sized 2D convolutions for
five 128 x 128 views, forward and forward + backward, same names and flop
counts. Each case runs contiguous and channels_last and reports the faster."""
import sys

import torch
import torch.nn.functional as F

import torch_common

VIEWS = 5
# name, in_channels, out_channels, size, kernel, stride, padding, dilation, groups
CASES = [
    ("conv2d_first_3to32_s2_128", 3, 32, 128, 3, 2, 1, 1, 1),
    ("conv2d_dw_96_s2_64", 96, 96, 64, 3, 2, 1, 1, 96),
    ("conv2d_dw_144_32", 144, 144, 32, 3, 1, 1, 1, 144),
    ("conv2d_pw_144to24_32", 144, 24, 32, 1, 1, 0, 1, 1),
    ("conv2d_pw_96to576_8", 96, 576, 8, 1, 1, 0, 1, 1),
    ("conv2d_dilated_64_32", 64, 64, 32, 3, 1, 2, 2, 1),
]


def time_case(cin, cout, size, kernel, stride, padding, dilation, groups, memory_format):
    x = torch.randn(VIEWS, cin, size, size).to(memory_format=memory_format).requires_grad_()
    w = (torch.randn(cout, cin // groups, kernel, kernel) * 0.1).requires_grad_()

    def forward():
        return F.conv2d(x, w, None, stride, padding, dilation, groups)

    y = forward()
    d_out = torch.randn_like(y)

    def run_forward():
        with torch.no_grad():
            forward()

    def run_forward_backward():
        torch.autograd.grad(forward(), (x, w), d_out)

    return (torch_common.median_ms(run_forward, warmup=3, repeats=15),
            torch_common.median_ms(run_forward_backward, warmup=3, repeats=15), y.shape)


def main():
    torch_common.setup()
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    for name, cin, cout, size, kernel, stride, padding, dilation, groups in CASES:
        results = {label: time_case(cin, cout, size, kernel, stride, padding, dilation, groups, fmt)
                   for label, fmt in formats.items()}
        out_shape = next(iter(results.values()))[2]
        macs = VIEWS * out_shape[2] * out_shape[3] * cout * (cin // groups) * kernel * kernel
        for index, suffix, flops in ((0, "fwd", 2 * macs), (1, "fwdbwd", 6 * macs)):
            best = min(results, key=lambda label: results[label][index])
            others = ", ".join(f"{label} {results[label][index]:.3f} ms" for label in results)
            print(f"torch_conv2d: {name}.{suffix}: {others}; reporting {best}", file=sys.stderr)
            torch_common.report(f"{name}.{suffix}", results[best][index], flops)


if __name__ == "__main__":
    main()
