"""scikit-learn peer of bench/bench_pca.c: PCA(n_components=32,
svd_solver="full") fit and transform on 200000 float32 rows of 384 channels
built the same way (64 latent uniforms times a uniform mixing matrix, plus
noise) from numpy's generator, so the values differ but not the shape or
spectrum kind. scikit-learn fits float32 input in float32 LAPACK; PyTorch has
no PCA with this API, so this peer does not use it."""
import numpy as np
from sklearn.decomposition import PCA

import torch_common

ROWS, CHANNELS, LATENT, COMPONENTS = 200000, 384, 64, 32


def main():
    torch_common.setup()
    rng = np.random.default_rng(1)
    latent = rng.random((ROWS, LATENT), dtype=np.float32) - 0.5
    mixing = rng.random((LATENT, CHANNELS), dtype=np.float32)
    rows = latent @ mixing + 0.1 * (rng.random((ROWS, CHANNELS), dtype=np.float32) - 0.5)
    holder = {}

    def fit():
        holder["pca"] = PCA(n_components=COMPONENTS, svd_solver="full").fit(rows)

    torch_common.report("pca_fit", torch_common.median_ms(fit, warmup=0, repeats=3),
                        ROWS * CHANNELS * CHANNELS)
    torch_common.report("pca_transform", torch_common.median_ms(lambda: holder["pca"].transform(rows),
                                                                warmup=1, repeats=5),
                        2 * ROWS * CHANNELS * COMPONENTS)


if __name__ == "__main__":
    main()
