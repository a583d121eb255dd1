"""Writes safetensors files without the safetensors package (Debian has none).

Layout: u64 little-endian header length, JSON header, raw little-endian data.
"""
import json
import os
import struct
import tempfile

import numpy as np
import torch

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("uint8"): "U8",
}


def save(path, tensors, metadata=None):
    """Write {name: tensor or array} to path atomically.

    Floating tensors are stored as float32, because the C code computes in
    float32; integer tensors keep their width.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        value = tensors[name]
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype("<f4")
        elif value.dtype.kind == "b":
            value = value.astype("u1")
        if value.dtype.newbyteorder("=") not in _DTYPES:
            raise TypeError(f"{name}: dtype {value.dtype} not supported")
        dtype = _DTYPES[value.dtype.newbyteorder("=")]
        data = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    with os.fdopen(handle, "wb") as stream:
        stream.write(struct.pack("<Q", len(text)))
        stream.write(text)
        for blob in blobs:
            stream.write(blob)
    os.chmod(temp_path, 0o644)
    os.replace(temp_path, path)
