"""Reference values for the DINOv2 forward (src/teacher/dinov2.c).

The model is written here from the structure of Hugging Face transformers'
Dinov2Model, with the facebook/dinov2-small checkpoint's key names, because
transformers is not installed. It has a stride-14 patch convolution, a CLS
token, position embeddings interpolated to the patch grid, pre-norm blocks
with layer scale, and a final layer norm. Everything runs in
float64 except the position-embedding interpolation, which transformers
runs in float32 and so does this copy.

Position embeddings follow Dinov2Embeddings.interpolate_pos_encoding in
its two forms. In both, a square patch grid as large as the table uses the
table as stored; otherwise the table's S x S grid goes through
F.interpolate(mode="bicubic", align_corners=False) in float32.
- "scale_factor" (transformers 4.38, and facebookresearch/dinov2 with its
  interpolate_offset 0.1): scale_factor = ((grid_h + 0.1) / S,
  (grid_w + 0.1) / S). PyTorch then maps output index i to input
  coordinate (i + 0.5) / scale_factor - 0.5.
- "size" (transformers' main branch by 2025): size = (grid_h, grid_w), so
  output index i maps to (i + 0.5) * S / grid - 0.5.

The weights are random (seeded) at a reduced size so the file stays small:
2 layers, hidden 48, 3 heads of 16, MLP 192, patch 14 and a 3 x 3
position table. Cases:
  dinov2_random_weights.safetensors  the weights under the Hugging Face names
  dinov2_wide.safetensors            56 x 70 input: 4 x 5 grid, table upsampled
  dinov2_table.safetensors           42 x 42 input: 3 x 3 grid, table as stored
  dinov2_tall.safetensors            28 x 14 input: 2 x 1 grid, table shrunk
  dinov2_wide_size.safetensors       as wide, with the "size" interpolation
  dinov2_tall_size.safetensors       as tall, with the "size" interpolation
The other cases use the "scale_factor" interpolation.
Each case stores "image" (H, W, 3) in [0, 1], "patch_tokens" (H/14, W/14, C)
after the final layer norm, "cls_token" (C) and "layer0_tokens"
(H/14, W/14, C), the patch tokens after block 0 without the final norm.
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from refs import st

HIDDEN = 48
HEADS = 3
MLP = 192
LAYERS = 2
PATCH = 14
TABLE_SIDE = 3
EPS = 1e-6
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def interpolate_pos_encoding(position_embeddings, grid_h, grid_w, mode):
    """position_embeddings (1, 1 + S*S, C) -> (1, 1 + grid_h*grid_w, C)."""
    num_positions = position_embeddings.shape[1] - 1
    side = int(math.sqrt(num_positions))
    if grid_h * grid_w == num_positions and grid_h == grid_w:
        return position_embeddings
    dim = position_embeddings.shape[-1]
    class_pos = position_embeddings[:, 0]
    patch_pos = position_embeddings[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    target_dtype = patch_pos.dtype
    if mode == "scale_factor":
        height, width = grid_h + 0.1, grid_w + 0.1
        resize = {"scale_factor": (float(height / math.sqrt(num_positions)),
                                   float(width / math.sqrt(num_positions)))}
    else:
        resize = {"size": (grid_h, grid_w)}
    patch_pos = F.interpolate(patch_pos.to(torch.float32), mode="bicubic", align_corners=False,
                              **resize).to(target_dtype)
    assert patch_pos.shape[-2:] == (grid_h, grid_w)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((class_pos.unsqueeze(0), patch_pos), dim=1)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(HIDDEN, eps=EPS)
        self.query = nn.Linear(HIDDEN, HIDDEN)
        self.key = nn.Linear(HIDDEN, HIDDEN)
        self.value = nn.Linear(HIDDEN, HIDDEN)
        self.dense = nn.Linear(HIDDEN, HIDDEN)
        self.lambda1 = nn.Parameter(torch.ones(HIDDEN))
        self.norm2 = nn.LayerNorm(HIDDEN, eps=EPS)
        self.fc1 = nn.Linear(HIDDEN, MLP)
        self.fc2 = nn.Linear(MLP, HIDDEN)
        self.lambda2 = nn.Parameter(torch.ones(HIDDEN))

    def attention(self, x):
        B, T, C = x.shape
        Dh = C // HEADS

        def heads(t):
            return t.reshape(B, T, HEADS, Dh).permute(0, 2, 1, 3)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(Dh), dim=-1)
        context = (probs @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        return self.dense(context)

    def forward(self, x):
        x = x + self.lambda1 * self.attention(self.norm1(x))
        return x + self.lambda2 * self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Dinov2(nn.Module):
    def __init__(self):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, HIDDEN))
        self.mask_token = nn.Parameter(torch.zeros(1, HIDDEN))
        self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + TABLE_SIDE ** 2, HIDDEN))
        self.projection = nn.Conv2d(3, HIDDEN, PATCH, stride=PATCH)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.layernorm = nn.LayerNorm(HIDDEN, eps=EPS)

    def forward(self, image, mode="scale_factor"):
        """image (H, W, 3) in [0, 1]. Returns patch tokens, CLS, block 0's patch tokens."""
        H, W, _ = image.shape
        mean = torch.tensor(MEAN, dtype=image.dtype)
        std = torch.tensor(STD, dtype=image.dtype)
        pixels = ((image - mean) / std).permute(2, 0, 1).unsqueeze(0)
        x = self.projection(pixels).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(1, -1, -1), x), dim=1)
        x = x + interpolate_pos_encoding(self.position_embeddings, H // PATCH, W // PATCH, mode)
        layer_outputs = []
        for block in self.blocks:
            x = block(x)
            layer_outputs.append(x)
        x = self.layernorm(x)
        grid = (H // PATCH, W // PATCH, HIDDEN)
        return x[0, 1:].reshape(grid), x[0, 0], layer_outputs[0][0, 1:].reshape(grid)

    def hf_state_dict(self):
        """Return the weights under facebook/dinov2-small's names."""
        tensors = {
            "embeddings.cls_token": self.cls_token,
            "embeddings.mask_token": self.mask_token,
            "embeddings.position_embeddings": self.position_embeddings,
            "embeddings.patch_embeddings.projection.weight": self.projection.weight,
            "embeddings.patch_embeddings.projection.bias": self.projection.bias,
            "layernorm.weight": self.layernorm.weight,
            "layernorm.bias": self.layernorm.bias,
        }
        for i, block in enumerate(self.blocks):
            prefix = f"encoder.layer.{i}."
            parts = {
                "norm1": block.norm1, "attention.attention.query": block.query,
                "attention.attention.key": block.key, "attention.attention.value": block.value,
                "attention.output.dense": block.dense, "norm2": block.norm2,
                "mlp.fc1": block.fc1, "mlp.fc2": block.fc2,
            }
            for name, module in parts.items():
                tensors[prefix + name + ".weight"] = module.weight
                tensors[prefix + name + ".bias"] = module.bias
            tensors[prefix + "layer_scale1.lambda1"] = block.lambda1
            tensors[prefix + "layer_scale2.lambda1"] = block.lambda2
        return tensors


def randomize(model):
    """Random weights at scales that keep activations near unit size.

    Values are rounded to float32 first, so the float64 model runs on
    exactly the weights that the C code reads from the file."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lambda1") or name.endswith("lambda2"):
                value = 0.5 + 0.2 * torch.randn(p.shape)
            elif "norm" in name and name.endswith("weight"):
                value = 1.0 + 0.2 * torch.randn(p.shape)
            elif name.endswith("bias"):
                value = 0.1 * torch.randn(p.shape)
            elif p.dim() >= 2 and name not in ("cls_token", "mask_token", "position_embeddings"):
                fan_in = p[0].numel()
                value = torch.randn(p.shape) / math.sqrt(fan_in)
            else:
                value = torch.randn(p.shape)
            p.copy_(value.to(torch.float32).to(torch.float64))


def generate(out_dir):
    model = Dinov2().double()
    randomize(model)
    st.save(os.path.join(out_dir, "dinov2_random_weights.safetensors"), model.hf_state_dict(),
            metadata={"source": "scripts/refs/dinov2.py, random weights",
                      "num_attention_heads": HEADS})
    cases = {"wide": (56, 70, "scale_factor"), "table": (42, 42, "scale_factor"),
             "tall": (28, 14, "scale_factor"), "wide_size": (56, 70, "size"),
             "tall_size": (28, 14, "size")}
    for name, (H, W, mode) in cases.items():
        image = torch.rand(H, W, 3).to(torch.float32).to(torch.float64)
        with torch.no_grad():
            patch_tokens, cls_token, layer0 = model(image, mode)
        st.save(os.path.join(out_dir, f"dinov2_{name}.safetensors"),
                {"image": image, "patch_tokens": patch_tokens, "cls_token": cls_token,
                 "layer0_tokens": layer0})
