"""PyTorch-side peer of bench_image.c: Pillow decodes the same PNG (and
composites it onto white, as oddone does), and PyTorch's antialiased
bilinear interpolation resizes an RGB view from 256 to 128 pixels."""
import os

import numpy as np
import torch
from PIL import Image

from torch_common import median_ms, report, setup


def main():
    setup()
    path = os.path.join(os.environ.get("TMPDIR") or "/tmp", "oddone-bench-view.png")
    with open(path, "rb") as stream:
        data = stream.read()

    def decode():
        import io
        image = Image.open(io.BytesIO(data))
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
        return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0)

    report("png_decode_256_rgba", median_ms(decode, warmup=5, repeats=31))
    view = decode().permute(2, 0, 1).unsqueeze(0).contiguous()

    def resize():
        return torch.nn.functional.interpolate(view, size=(128, 128), mode="bilinear",
                                               align_corners=False, antialias=True)

    report("resize_256_to_128_rgb", median_ms(resize, warmup=5, repeats=31))


if __name__ == "__main__":
    main()
