"""Reference values for the convolution layers (src/nn/conv.h).

Four files: conv_conv2d, conv_conv3d, conv_conv3d_wide (more channel
counts of the encoder-decoder) and conv_conv_transpose3d.
Every case is computed in float64 with torch.nn.functional and stored as
float32 under "<case>.<tensor>":
  in, out, d_out, d_in   channels-last activations, (N, [D,] H, W, C)
  weight, d_weight       PyTorch's layout
  bias, d_bias           (Cout), present only when the case has a bias
  config                 int64 (23): batch, in_channels, out_channels,
                         groups, bias, then in_size, kernel, stride, padding,
                         dilation and output_padding, 3 values each (2D
                         cases use the first 2 of each triple and store 0 in
                         the third).
The gradients are those of sum(out * d_out) for a random d_out.
"""
import os

import torch
import torch.nn.functional as F

from refs import st

# name: (batch, in_channels, out_channels, in_size, kernel, stride, padding,
#        dilation, groups, bias[, output_padding])
CONV2D_CASES = {
    "basic": (2, 3, 4, (7, 5), (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    "one_channel_stride2_odd": (1, 1, 3, (7, 5), (3, 3), (2, 2), (1, 1), (1, 1), 1, True),
    "dilation2": (1, 2, 3, (9, 8), (3, 3), (1, 1), (2, 2), (2, 2), 1, False),
    "groups2_mixed": (2, 4, 6, (6, 7), (3, 2), (1, 2), (1, 0), (1, 1), 2, True),
    "depthwise": (1, 8, 8, (7, 5), (3, 3), (1, 1), (1, 1), (1, 1), 8, True),
    "kernel1_stride2_even": (1, 3, 2, (8, 6), (1, 1), (2, 2), (0, 0), (1, 1), 1, False),
    "kernel1_pad1": (1, 2, 3, (4, 5), (1, 1), (1, 1), (1, 1), (1, 1), 1, True),
    "wide_depthwise_stride2": (2, 32, 32, (9, 6), (3, 3), (2, 2), (1, 1), (1, 1), 32, False),
    "wide_channels": (1, 16, 32, (9, 6), (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
}

CONV3D_CASES = {
    "basic": (2, 3, 5, (9, 6, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1, True),
    "one_channel_stride2_odd": (1, 1, 4, (9, 6, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), 1, True),
    "dilation2": (1, 2, 3, (9, 6, 5), (3, 3, 3), (1, 1, 1), (2, 2, 2), (2, 2, 2), 1, False),
    "groups2": (1, 4, 4, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 2, True),
    "stride2_even_nopad": (2, 3, 2, (8, 6, 4), (1, 3, 2), (2, 2, 2), (0, 1, 0), (1, 1, 1), 1, True),
    # The stem of the encoder-decoder, 32 -> 16 channels (kept here so
    # that no file grows past ~300 KB).
    "wide_32_to_16": (2, 32, 16, (3, 4, 5), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1, True),
}

# Channel counts of the encoder-decoder, which take oneDNN's JIT kernels
# rather than its reference code.
CONV3D_WIDE_CASES = {
    "wide_stride1": (1, 16, 16, (5, 6, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1, False),
    "wide_stride2": (1, 16, 32, (4, 6, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), 1, True),
}

CONV_TRANSPOSE3D_CASES = {
    "kernel2_stride2": (1, 4, 3, (3, 4, 5), (2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), 1, True, (0, 0, 0)),
    "kernel2_stride2_wide": (2, 32, 16, (2, 3, 4), (2, 2, 2), (2, 2, 2), (0, 0, 0), (1, 1, 1), 1, True,
                             (0, 0, 0)),
    "output_padding1": (2, 3, 2, (3, 4, 5), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), 1, True, (1, 1, 1)),
    "output_padding_over_padding": (1, 2, 3, (3, 2, 4), (3, 3, 3), (2, 2, 2), (0, 0, 0), (1, 1, 1), 1, False,
                                    (1, 0, 1)),
    "groups2_dilation2": (1, 4, 6, (3, 3, 4), (3, 3, 3), (1, 1, 1), (1, 1, 1), (2, 2, 2), 2, True, (0, 0, 0)),
    "wide_stride2_pad": (1, 16, 16, (3, 4, 3), (3, 3, 3), (2, 2, 2), (1, 1, 1), (1, 1, 1), 1, False,
                         (1, 1, 1)),
}


def _channels_last(x):
    return x.permute(0, *range(2, x.dim()), 1).contiguous()


def _triple(values):
    values = list(values)
    return values + [0] * (3 - len(values))


def _case(kind, spec):
    batch, cin, cout, size, kernel, stride, padding, dilation, groups, bias = spec[:10]
    output_padding = spec[10] if len(spec) > 10 else (0,) * len(size)
    transposed = kind == "conv_transpose3d"
    x = torch.randn(batch, cin, *size, dtype=torch.float64, requires_grad=True)
    if transposed:
        w_shape = (cin, cout // groups, *kernel)
        fan_in = cout // groups
    else:
        w_shape = (cout, cin // groups, *kernel)
        fan_in = cin // groups
    for k in kernel:
        fan_in *= k
    w = (torch.randn(*w_shape, dtype=torch.float64) / fan_in ** 0.5).requires_grad_()
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True) if bias else None

    if kind == "conv2d":
        y = F.conv2d(x, w, b, stride, padding, dilation, groups)
    elif kind == "conv3d":
        y = F.conv3d(x, w, b, stride, padding, dilation, groups)
    else:
        y = F.conv_transpose3d(x, w, b, stride, padding, output_padding, groups, dilation)
    d_out = torch.randn_like(y)
    y.backward(d_out)

    config = [batch, cin, cout, groups, int(bias)]
    for values in (size, kernel, stride, padding, dilation, output_padding):
        config += _triple(values)
    tensors = {
        "config": torch.tensor(config, dtype=torch.int64),
        "in": _channels_last(x.detach()),
        "weight": w.detach(),
        "out": _channels_last(y.detach()),
        "d_out": _channels_last(d_out),
        "d_in": _channels_last(x.grad),
        "d_weight": w.grad,
    }
    if bias:
        tensors["bias"] = b.detach()
        tensors["d_bias"] = b.grad
    return tensors


def generate(out_dir):
    files = (("conv2d", "conv2d", CONV2D_CASES), ("conv3d", "conv3d", CONV3D_CASES),
             ("conv3d_wide", "conv3d", CONV3D_WIDE_CASES),
             ("conv_transpose3d", "conv_transpose3d", CONV_TRANSPOSE3D_CASES))
    for file_name, kind, cases in files:
        tensors = {}
        for name, spec in cases.items():
            for key, value in _case(kind, spec).items():
                tensors[f"{name}.{key}"] = value
        st.save(os.path.join(out_dir, f"conv_{file_name}.safetensors"), tensors,
                {"producer": "scripts/refs/conv.py", "cases": ",".join(cases)})
