"""Reference values for the layers in src/nn/: activations, normalization,
linear, softmax and average pooling.

Inputs are drawn in float32 (the C code reads them as float32), the forward and backward
run in float64 through autograd, and the results are stored as float32.
Shapes are deliberately awkward: one row, one channel, channel counts that
are not a multiple of 16, and sizes that cross the C code's internal chunk
(64 channels) and partition (1024 rows) boundaries.

Each case i stores "case{i}.<tensor>" plus an int64 "case{i}.dims" with its
sizes and parameters; the order of "dims" is stated per file below and
repeated in the C test that reads it.
"""
import os

import torch
import torch.nn.functional as F

from refs import st


def _rand(*shape, scale=1.0, offset=0.0):
    return (torch.randn(*shape, dtype=torch.float32) * scale + offset).to(torch.float64)


def _grad_case(fn, inputs, d_out):
    """Run fn(*inputs) in float64, backpropagate d_out, return (out, grads)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    out.backward(d_out)
    return out.detach(), [leaf.grad.detach() for leaf in leaves]


def _dims(*values):
    return torch.tensor(values, dtype=torch.int64)


# ---- activations -----------------------------------------------------------

def _activation_input():
    # Random values plus the kinks (0 and 6) and both tails.
    special = torch.tensor([0.0, -0.0, 6.0, 5.999, 6.001, 1e-3, -1e-3, 1e-6, -1e-6, 3.0, -3.0,
                            8.0, -8.0, 12.0, -12.0, 30.0, -30.0], dtype=torch.float64)
    return torch.cat([_rand(200, scale=3.0), special])


def generate_activations(out_dir):
    x = _activation_input()
    d_out = _rand(x.numel())
    tensors = {"x": x, "d_out": d_out}
    functions = {
        "relu": F.relu,
        "relu6": F.relu6,
        "leaky_relu": lambda t: F.leaky_relu(t, negative_slope=0.2),
        "gelu": F.gelu,
        "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
    }
    for name, fn in functions.items():
        out, (d_in,) = _grad_case(fn, [x], d_out)
        tensors[f"{name}.out"] = out
        tensors[f"{name}.d_in"] = d_in

    # GEGLU: a (value) is the first half of the last dimension, b (gate) the second.
    def geglu(t):
        a, b = t.chunk(2, dim=-1)
        return a * F.gelu(b)

    for i, (rows, channels) in enumerate([(7, 37), (1, 1), (3, 300)]):
        xg = _rand(rows, 2 * channels, scale=2.0)
        dg = _rand(rows, channels)
        out, (d_in,) = _grad_case(geglu, [xg], dg)
        tensors.update({f"geglu{i}.x": xg, f"geglu{i}.d_out": dg, f"geglu{i}.out": out,
                        f"geglu{i}.d_in": d_in, f"geglu{i}.dims": _dims(rows, channels)})
    st.save(os.path.join(out_dir, "layers_activation.safetensors"), tensors)


# ---- normalization ---------------------------------------------------------

def generate_batchnorm(out_dir):
    # dims: rows, channels; eps, momentum stored as tensors.
    eps, momentum = 1e-5, 0.1
    cases = [(90, 37, 0.0), (2, 1, 0.0), (130, 16, 0.0), (70, 32, 3.0), (2100, 1, 5.0),
             (30, 70, 0.0)]
    tensors = {"eps": torch.tensor([eps]), "momentum": torch.tensor([momentum])}
    for i, (rows, channels, offset) in enumerate(cases):
        x = _rand(rows, channels, scale=0.5, offset=offset)
        gamma = _rand(channels, scale=0.5, offset=1.0)
        beta = _rand(channels, scale=0.5)
        d_out = _rand(rows, channels)
        running_mean = _rand(channels, scale=0.2)
        running_var = _rand(channels, scale=0.2).abs() + 0.5

        def train(t, g, b):
            return F.batch_norm(t, None, None, g, b, training=True, eps=eps)

        out, (d_x, d_gamma, d_beta) = _grad_case(train, [x, gamma, beta], d_out)
        mean = x.mean(0)
        rstd = 1.0 / torch.sqrt(x.var(0, unbiased=False) + eps)
        new_mean, new_var = running_mean.clone(), running_var.clone()
        F.batch_norm(x, new_mean, new_var, gamma, beta, training=True, momentum=momentum, eps=eps)
        infer = F.batch_norm(x, running_mean, running_var, gamma, beta, training=False, eps=eps)
        tensors.update({
            f"case{i}.dims": _dims(rows, channels),
            f"case{i}.x": x, f"case{i}.gamma": gamma, f"case{i}.beta": beta,
            f"case{i}.d_out": d_out, f"case{i}.out": out, f"case{i}.mean": mean,
            f"case{i}.rstd": rstd, f"case{i}.d_x": d_x, f"case{i}.d_gamma": d_gamma,
            f"case{i}.d_beta": d_beta,
            f"case{i}.running_mean": running_mean, f"case{i}.running_var": running_var,
            f"case{i}.new_running_mean": new_mean, f"case{i}.new_running_var": new_var,
            f"case{i}.inference_out": infer,
        })
    tensors["count"] = _dims(len(cases))
    st.save(os.path.join(out_dir, "layers_batchnorm.safetensors"), tensors)


def generate_groupnorm(out_dir):
    # dims: batch, spatial, channels, groups. Channels-last (N, S, C) in C;
    # PyTorch's group_norm wants (N, C, S).
    eps = 1e-5
    cases = [(2, 35, 12, 3), (1, 1, 4, 2), (1, 50, 37, 1), (3, 20, 16, 16), (1, 2050, 4, 2),
             (2, 10, 70, 5), (1, 9, 32, 8)]
    tensors = {"eps": torch.tensor([eps])}
    for i, (batch, spatial, channels, groups) in enumerate(cases):
        x = _rand(batch, spatial, channels, scale=0.7, offset=0.5)
        gamma = _rand(channels, scale=0.5, offset=1.0)
        beta = _rand(channels, scale=0.5)
        d_out = _rand(batch, spatial, channels)

        def group_norm(t, g, b):
            y = F.group_norm(t.permute(0, 2, 1), groups, g, b, eps=eps)
            return y.permute(0, 2, 1)

        out, (d_x, d_gamma, d_beta) = _grad_case(group_norm, [x, gamma, beta], d_out)
        grouped = x.reshape(batch, spatial, groups, channels // groups)
        mean = grouped.mean(dim=(1, 3))
        rstd = 1.0 / torch.sqrt(grouped.var(dim=(1, 3), unbiased=False) + eps)
        tensors.update({
            f"case{i}.dims": _dims(batch, spatial, channels, groups),
            f"case{i}.x": x, f"case{i}.gamma": gamma, f"case{i}.beta": beta,
            f"case{i}.d_out": d_out, f"case{i}.out": out, f"case{i}.mean": mean,
            f"case{i}.rstd": rstd, f"case{i}.d_x": d_x, f"case{i}.d_gamma": d_gamma,
            f"case{i}.d_beta": d_beta,
        })
    tensors["count"] = _dims(len(cases))
    st.save(os.path.join(out_dir, "layers_groupnorm.safetensors"), tensors)


def generate_layernorm(out_dir):
    # dims: rows, channels
    eps = 1e-5
    cases = [(7, 37), (1, 1), (5, 256), (3, 130), (4, 16)]
    tensors = {"eps": torch.tensor([eps])}
    for i, (rows, channels) in enumerate(cases):
        x = _rand(rows, channels, scale=1.5, offset=0.3)
        gamma = _rand(channels, scale=0.5, offset=1.0)
        beta = _rand(channels, scale=0.5)
        d_out = _rand(rows, channels)

        def layer_norm(t, g, b):
            return F.layer_norm(t, (channels,), g, b, eps=eps)

        out, (d_x, d_gamma, d_beta) = _grad_case(layer_norm, [x, gamma, beta], d_out)
        tensors.update({
            f"case{i}.dims": _dims(rows, channels),
            f"case{i}.x": x, f"case{i}.gamma": gamma, f"case{i}.beta": beta,
            f"case{i}.d_out": d_out, f"case{i}.out": out, f"case{i}.mean": x.mean(1),
            f"case{i}.rstd": 1.0 / torch.sqrt(x.var(1, unbiased=False) + eps),
            f"case{i}.d_x": d_x, f"case{i}.d_gamma": d_gamma, f"case{i}.d_beta": d_beta,
        })
    tensors["count"] = _dims(len(cases))
    st.save(os.path.join(out_dir, "layers_layernorm.safetensors"), tensors)


# ---- linear ----------------------------------------------------------------

def generate_linear(out_dir):
    # dims: rows, in_features, out_features, has_bias
    cases = [(7, 37, 5, 1), (1, 1, 1, 1), (13, 64, 130, 1), (6, 20, 9, 0)]
    tensors = {}
    for i, (rows, n_in, n_out, has_bias) in enumerate(cases):
        x = _rand(rows, n_in)
        weight = _rand(n_out, n_in, scale=n_in ** -0.5)
        bias = _rand(n_out, scale=0.3)
        d_out = _rand(rows, n_out)
        if has_bias:
            out, (d_x, d_w, d_b) = _grad_case(F.linear, [x, weight, bias], d_out)
            tensors[f"case{i}.bias"] = bias
            tensors[f"case{i}.d_bias"] = d_b
        else:
            out, (d_x, d_w) = _grad_case(F.linear, [x, weight], d_out)
        tensors.update({
            f"case{i}.dims": _dims(rows, n_in, n_out, has_bias),
            f"case{i}.x": x, f"case{i}.weight": weight, f"case{i}.d_out": d_out,
            f"case{i}.out": out, f"case{i}.d_x": d_x, f"case{i}.d_weight": d_w,
        })
    tensors["count"] = _dims(len(cases))
    st.save(os.path.join(out_dir, "layers_linear.safetensors"), tensors)


# ---- softmax ---------------------------------------------------------------

def generate_softmax(out_dir):
    # dims: rows, channels. Case 3 has logits of magnitude ~100, which
    # overflow exp() unless the row maximum is subtracted first.
    cases = [(9, 37, 1.0), (1, 1, 1.0), (4, 120, 2.0), (5, 19, 100.0)]
    tensors = {}
    for i, (rows, channels, scale) in enumerate(cases):
        x = _rand(rows, channels, scale=scale)
        d_out = _rand(rows, channels)
        out, (d_x,) = _grad_case(lambda t: F.softmax(t, dim=-1), [x], d_out)
        tensors.update({
            f"case{i}.dims": _dims(rows, channels),
            f"case{i}.x": x, f"case{i}.d_out": d_out, f"case{i}.out": out, f"case{i}.d_x": d_x,
        })
    tensors["count"] = _dims(len(cases))
    st.save(os.path.join(out_dir, "layers_softmax.safetensors"), tensors)


# ---- average pooling -------------------------------------------------------

def generate_pool(out_dir):
    # 2D dims: N, H, W, C, kH, kW, sH, sW, pH, pW, count_include_pad
    # 3D dims: N, D, H, W, C, kD, kH, kW, sD, sH, sW, pD, pH, pW, count_include_pad
    tensors = {}
    cases_2d = [
        ((2, 7, 9, 5), (3, 3), (2, 2), (1, 1), True),
        ((1, 4, 4, 1), (2, 2), (2, 2), (0, 0), True),
        ((1, 5, 6, 37), (2, 3), (1, 2), (1, 1), True),
        ((1, 5, 6, 3), (3, 3), (2, 2), (1, 1), False),
        ((1, 8, 8, 32), (2, 2), (2, 2), (0, 0), True),
    ]
    for i, (shape, kernel, stride, padding, include_pad) in enumerate(cases_2d):
        x = _rand(*shape)

        def pool(t):
            y = F.avg_pool2d(t.permute(0, 3, 1, 2), kernel, stride, padding,
                             count_include_pad=include_pad)
            return y.permute(0, 2, 3, 1)

        out = pool(x)
        d_out = _rand(*out.shape)
        out, (d_x,) = _grad_case(pool, [x], d_out)
        tensors.update({
            f"pool2d{i}.dims": _dims(*shape, *kernel, *stride, *padding, int(include_pad)),
            f"pool2d{i}.x": x, f"pool2d{i}.d_out": d_out, f"pool2d{i}.out": out,
            f"pool2d{i}.d_x": d_x,
        })
    cases_3d = [
        ((1, 5, 6, 7, 3), (3, 3, 3), (2, 2, 2), (1, 1, 1), True),
        ((2, 4, 4, 4, 16), (2, 2, 2), (2, 2, 2), (0, 0, 0), True),
        ((1, 3, 5, 4, 2), (1, 3, 2), (1, 2, 1), (0, 1, 1), False),
        ((1, 4, 3, 5, 37), (2, 2, 3), (1, 1, 2), (1, 0, 1), True),
    ]
    for i, (shape, kernel, stride, padding, include_pad) in enumerate(cases_3d):
        x = _rand(*shape)

        def pool(t):
            y = F.avg_pool3d(t.permute(0, 4, 1, 2, 3), kernel, stride, padding,
                             count_include_pad=include_pad)
            return y.permute(0, 2, 3, 4, 1)

        out = pool(x)
        d_out = _rand(*out.shape)
        out, (d_x,) = _grad_case(pool, [x], d_out)
        tensors.update({
            f"pool3d{i}.dims": _dims(*shape, *kernel, *stride, *padding, int(include_pad)),
            f"pool3d{i}.x": x, f"pool3d{i}.d_out": d_out, f"pool3d{i}.out": out,
            f"pool3d{i}.d_x": d_x,
        })
    tensors["count2d"] = _dims(len(cases_2d))
    tensors["count3d"] = _dims(len(cases_3d))
    st.save(os.path.join(out_dir, "layers_pool.safetensors"), tensors)


def generate(out_dir):
    for step in (generate_activations, generate_batchnorm, generate_groupnorm,
                 generate_layernorm, generate_linear, generate_softmax, generate_pool):
        torch.manual_seed(0)
        step(out_dir)
