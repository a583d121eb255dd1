"""Reference file for the safetensors reader: every dtype it converts."""
import os

import numpy as np
import torch

from refs import st


def generate(out_dir):
    values = torch.tensor([0.0, -1.5, 3.25, 1e-3, -65504.0, 6.1e-5, 2.0 ** -20], dtype=torch.float32)
    # F16 and BF16 are written by hand because st.save stores floats as F32.
    f16 = values.to(torch.float16).numpy().view(np.uint16)
    bf16 = values.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    tensors = {
        "f32": values.reshape(7, 1),
        "f16_as_f32": values.to(torch.float16).to(torch.float32),
        "bf16_as_f32": values.to(torch.bfloat16).to(torch.float32),
        "i64": torch.tensor([[0, -1, 2], [2147483647, -2147483648, 5]], dtype=torch.int64),
        "f16_bits": torch.from_numpy(f16.astype(np.int32)),
        "bf16_bits": torch.from_numpy(bf16.astype(np.int32)),
        "empty": torch.zeros(0, 3),
    }
    st.save(os.path.join(out_dir, "io_format.safetensors"), tensors, {"producer": "make_references.py"})
