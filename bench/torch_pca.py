"""scikit-learn peer of bench/bench_pca.c: PCA(n_components=32,
svd_solver="full") fit and transform on 200000 float32 rows of 384 channels,
and fit on 50000 rows of 1024 channels, built the same way (64 latent
uniforms times a uniform mixing matrix, plus noise) from numpy's generator,
so the values differ but not the shape or spectrum kind. scikit-learn fits
float32 input in float32 LAPACK. The pca_solve cases time numpy.linalg.eigh
(LAPACK syevd) of the float64 covariance, the step the C od_pca_fit times.
PyTorch has no PCA with this API, so this peer does not use it."""
import numpy as np
from sklearn.decomposition import PCA

import torch_common

LATENT, COMPONENTS = 64, 32


def run_cases(rows_count, channels, suffix, with_transform):
    rng = np.random.default_rng(1)
    latent = rng.random((rows_count, LATENT), dtype=np.float32) - 0.5
    mixing = rng.random((LATENT, channels), dtype=np.float32)
    rows = latent @ mixing + 0.1 * (rng.random((rows_count, channels), dtype=np.float32) - 0.5)
    holder = {}

    def fit():
        holder["pca"] = PCA(n_components=COMPONENTS, svd_solver="full").fit(rows)

    repeats = 1 if channels > 512 else 3
    torch_common.report("pca_fit" + suffix, torch_common.median_ms(fit, warmup=0, repeats=repeats),
                        rows_count * channels * channels)
    covariance = np.cov(rows.astype(np.float64), rowvar=False)
    torch_common.report("pca_solve" + suffix,
                        torch_common.median_ms(lambda: np.linalg.eigh(covariance), warmup=0, repeats=3))
    if with_transform:
        torch_common.report("pca_transform" + suffix,
                            torch_common.median_ms(lambda: holder["pca"].transform(rows), warmup=1, repeats=5),
                            2 * rows_count * channels * COMPONENTS)


def main():
    torch_common.setup()
    run_cases(200000, 384, "", True)
    run_cases(50000, 1024, "_1024", False)


if __name__ == "__main__":
    main()
