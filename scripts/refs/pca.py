"""Reference values for src/core/half.c and src/eval/pca.c.

half.safetensors: float32 inputs (random bit patterns over the half range,
exact ties between neighbouring halves, subnormals, the overflow edge) and
the bits numpy's astype(float16) gives, stored as I32 ("half_bits").

pca_<case>.safetensors: float32 rows (N, C) with a decaying spectrum and a
mean offset, and scikit-learn 1.2's PCA(n_components=k, svd_solver="full")
fitted on them in float64: mean, components, explained_variance,
explained_variance_ratio and transform(rows). scikit-learn 1.2 fixes the
component signs from the projected rows (svd_flip with u_based_decision=True);
here each component is flipped so that its entry of largest magnitude is
positive, as the C code does, and the projected columns flip with it.
"""
import os

import numpy as np
from sklearn.decomposition import PCA

from refs import st


def _half_cases(rng):
    values = []
    # Random float32 bit patterns spread over the magnitudes a half can hold
    # and a little beyond (2^-26 .. 2^17), both signs.
    exponents = rng.integers(127 - 26, 127 + 17, size=4000)
    mantissas = rng.integers(0, 1 << 23, size=4000)
    signs = rng.integers(0, 2, size=4000)
    bits = (signs << 31) | (exponents << 23) | mantissas
    values.append(bits.astype(np.uint32).view(np.float32))
    # Exact midpoints between neighbouring halves (ties), for every half
    # pattern of a random subset, normals and subnormals, and points just
    # either side of each midpoint.
    halves = np.concatenate([np.arange(0, 64), rng.integers(0, 0x7bff, size=1500)]).astype(np.uint16)
    low = halves.view(np.float16).astype(np.float64)
    high = (halves + 1).astype(np.uint16).view(np.float16).astype(np.float64)
    middle = ((low + high) / 2).astype(np.float32)
    assert np.all(middle.astype(np.float64) == (low + high) / 2)
    values.append(middle)
    values.append(np.nextafter(middle, np.float32(np.inf)))
    values.append(np.nextafter(middle, np.float32(0)))
    values.append(-middle)
    special = np.array([0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65519.996, 65520.0, 65536.0, 1e10,
                        np.inf, -np.inf, 2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26,
                        2.0 ** -14, 2.0 ** -14 * (1 - 2.0 ** -11), 1e-30, 1.5 * 2.0 ** -24,
                        2.5 * 2.0 ** -24, 3.14159265],
                       dtype=np.float64).astype(np.float32)
    values.append(special)
    values.append(-special)
    x = np.concatenate(values).astype(np.float32)
    expected = x.astype(np.float16).view(np.uint16).astype(np.int32)
    return {"input": x, "half_bits": expected}


def _pca_case(rng, n, c, k, decay):
    q, _ = np.linalg.qr(rng.normal(size=(c, c)))
    scales = 3.0 * decay ** np.arange(c)
    mean = rng.normal(size=c) * 2.0 + 1.0
    rows = (rng.normal(size=(n, c)) * scales) @ q.T + mean
    rows = rows.astype(np.float32)
    x = rows.astype(np.float64)
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    components = pca.components_.copy()
    projected = pca.transform(x)
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(k), largest])
    components *= signs[:, None]
    projected *= signs[None, :]
    return {"rows": rows, "mean": pca.mean_, "components": components,
            "explained_variance": pca.explained_variance_,
            "explained_variance_ratio": pca.explained_variance_ratio_,
            "transformed": projected,
            "k": np.array([k], np.int32)}


def generate(out_dir):
    rng = np.random.default_rng(5)
    st.save(os.path.join(out_dir, "half.safetensors"), _half_cases(rng))
    # Tall, a size off any vector width, and fewer rows than channels.
    st.save(os.path.join(out_dir, "pca_tall.safetensors"), _pca_case(rng, 700, 40, 8, 0.8))
    st.save(os.path.join(out_dir, "pca_odd.safetensors"), _pca_case(rng, 333, 67, 16, 0.85))
    st.save(os.path.join(out_dir, "pca_wide.safetensors"), _pca_case(rng, 30, 50, 10, 0.7))
