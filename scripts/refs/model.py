"""Reference values for the learned model's modules (src/model/).

model_volume_net: the 3D residual encoder-decoder with its density, colour
and feature heads (src/model/volume_net.h) at a small size, batch 2 on a
4 x 8 x 8 grid with channels 3/4/6, so that the file stays small. The
module below is built layer by layer as volume_net.h describes, with the
same parameter names. One training step in float64:
  input                  (N, D, H, W, Cin) channels-last
  <name>                 every parameter and running statistic before the
                         step (batch-norm affine weights and running
                         statistics drawn away from 1 and 0, so that a
                         mix-up shows)
  d_density, d_colour, d_features   random upstream gradients
  density, colour, features         outputs of the training forward
  grad.<name>, grad.input           gradients of
                         sum(density d_density) + sum(colour d_colour)
                         + sum(features d_features)
  after.<bn>.running_mean, after.<bn>.running_var   after the step
  eval.density, eval.colour, eval.features          an eval() forward
                         after the step, with the updated statistics
  config                 int64: batch, D, H, W, Cin, levels, channels[3],
                         down_blocks[3], up_blocks[2], head_hidden,
                         feature_channels

model_pyramid: the 2D feature pyramid (src/model/pyramid.h), batch 2,
three levels of 8 x 12, 4 x 6 and 2 x 3 pixels, in float64:
  input.<i>, grad.input.<i>   level i's map (N, H, W, C_i) and its gradient
  lateral.<i>.weight, lateral.<i>.bias and grad.<name>
  output, d_output             (N, H, W, C)
  config                       int64: batch, height, width, levels,
                               in_channels[3], out_channels
"""
import os

import torch
import torch.nn.functional as F
from torch import nn

from refs import st

BATCH = 2
DIMS = (4, 8, 8)
IN_CHANNELS = 2
CHANNELS = (3, 4, 6)
DOWN_BLOCKS = (1, 1, 2)
UP_BLOCKS = (2, 1)  # levels 0 and 1 on the way up
HEAD_HIDDEN = 5
FEATURE_CHANNELS = 3
MOMENTUM = 0.1


class Block(nn.Module):
    """conv, batchnorm, ReLU, conv, batchnorm, + input, ReLU."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels, momentum=MOMENTUM)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels, momentum=MOMENTUM)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + x)


def conv_bn_relu(cin, cout, stride):
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm3d(cout, momentum=MOMENTUM), nn.ReLU())


def head(cin, hidden, cout):
    return nn.Sequential(nn.Linear(cin, hidden), nn.LeakyReLU(0.01), nn.Linear(hidden, cout))


class VolumeNet(nn.Module):
    def __init__(self):
        super().__init__()
        levels = len(CHANNELS)
        self.stem = conv_bn_relu(IN_CHANNELS, CHANNELS[0], 1)
        self.down = nn.ModuleList(
            nn.Sequential(*(Block(CHANNELS[level]) for _ in range(DOWN_BLOCKS[level]))) for level in range(levels))
        self.down_conv = nn.ModuleList(conv_bn_relu(CHANNELS[level], CHANNELS[level + 1], 2)
                                       for level in range(levels - 1))
        self.up_conv = nn.ModuleList(nn.ConvTranspose3d(CHANNELS[level + 1], CHANNELS[level], 2, stride=2)
                                     for level in range(levels - 1))
        self.up = nn.ModuleList(
            nn.Sequential(*(Block(CHANNELS[level]) for _ in range(UP_BLOCKS[level]))) for level in range(levels - 1))
        self.density_head = head(CHANNELS[0], HEAD_HIDDEN, 1)
        self.colour_head = head(CHANNELS[0], HEAD_HIDDEN, 3)
        self.feature_head = head(CHANNELS[0], HEAD_HIDDEN, FEATURE_CHANNELS)

    def forward(self, x):
        """x is (N, C, D, H, W); returns the three heads' outputs channels-last."""
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
        density = self.density_head(trunk)[..., 0]
        colour = torch.sigmoid(self.colour_head(trunk))
        features = self.feature_head(trunk)
        return density, colour, features


def _channels_last(x):
    return x.permute(0, 2, 3, 4, 1).contiguous()


def generate_volume_net(out_dir):
    torch.manual_seed(7)
    model = VolumeNet().double()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.copy_(torch.rand_like(module.weight) + 0.5)
                module.bias.copy_(torch.randn_like(module.bias) * 0.1)
                module.running_mean.copy_(torch.randn_like(module.running_mean) * 0.1)
                module.running_var.copy_(torch.rand_like(module.running_var) + 0.5)
    tensors = {}
    for name, value in model.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            tensors[name] = value.clone()

    x = torch.randn(BATCH, IN_CHANNELS, *DIMS, dtype=torch.float64, requires_grad=True)
    model.train()
    density, colour, features = model(x)
    d_density = torch.randn_like(density)
    d_colour = torch.randn_like(colour)
    d_features = torch.randn_like(features)
    loss = (density * d_density).sum() + (colour * d_colour).sum() + (features * d_features).sum()
    loss.backward()

    tensors.update({
        "input": _channels_last(x.detach()),
        "d_density": d_density, "d_colour": d_colour, "d_features": d_features,
        "density": density.detach(), "colour": colour.detach(), "features": features.detach(),
        "grad.input": _channels_last(x.grad),
    })
    for name, parameter in model.named_parameters():
        tensors["grad." + name] = parameter.grad
    for name, value in model.state_dict().items():
        if "running_" in name:
            tensors["after." + name] = value.clone()

    model.eval()
    with torch.no_grad():
        density, colour, features = model(x)
    tensors.update({"eval.density": density, "eval.colour": colour, "eval.features": features})
    tensors["config"] = torch.tensor([BATCH, *DIMS, IN_CHANNELS, len(CHANNELS), *CHANNELS, *DOWN_BLOCKS, *UP_BLOCKS,
                                      HEAD_HIDDEN, FEATURE_CHANNELS], dtype=torch.int64)
    st.save(os.path.join(out_dir, "model_volume_net.safetensors"), tensors,
            {"producer": "scripts/refs/model.py"})


PYRAMID_BATCH = 2
PYRAMID_SIZE = (8, 12)
PYRAMID_IN_CHANNELS = (3, 5, 4)
PYRAMID_OUT_CHANNELS = 6


class Pyramid(nn.Module):
    """1x1 lateral convolutions, bilinear upsampling to level 0, sum."""

    def __init__(self):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, PYRAMID_OUT_CHANNELS, 1) for c in PYRAMID_IN_CHANNELS)

    def forward(self, inputs):
        out = self.lateral[0](inputs[0])
        for level in range(1, len(inputs)):
            out = out + F.interpolate(self.lateral[level](inputs[level]), scale_factor=2 ** level, mode="bilinear",
                                      align_corners=False)
        return out


def generate_pyramid(out_dir):
    torch.manual_seed(11)
    model = Pyramid().double()
    height, width = PYRAMID_SIZE
    inputs = [torch.randn(PYRAMID_BATCH, c, height >> i, width >> i, dtype=torch.float64, requires_grad=True)
              for i, c in enumerate(PYRAMID_IN_CHANNELS)]
    out = model(inputs)
    d_out = torch.randn_like(out)
    out.backward(d_out)
    nhwc = (0, 2, 3, 1)
    tensors = {"output": out.detach().permute(*nhwc), "d_output": d_out.permute(*nhwc)}
    for i, x in enumerate(inputs):
        tensors[f"input.{i}"] = x.detach().permute(*nhwc)
        tensors[f"grad.input.{i}"] = x.grad.permute(*nhwc)
    for name, parameter in model.named_parameters():
        tensors[name] = parameter.detach()
        tensors["grad." + name] = parameter.grad
    tensors["config"] = torch.tensor([PYRAMID_BATCH, height, width, len(PYRAMID_IN_CHANNELS), *PYRAMID_IN_CHANNELS,
                                      PYRAMID_OUT_CHANNELS], dtype=torch.int64)
    st.save(os.path.join(out_dir, "model_pyramid.safetensors"), tensors, {"producer": "scripts/refs/model.py"})


def generate(out_dir):
    generate_volume_net(out_dir)
    generate_pyramid(out_dir)
