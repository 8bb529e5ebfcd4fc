#!/usr/bin/env python3
"""scikit-learn's PCA on the same data as W5 of `cargo bench --bench workloads`, for side-by-side fit
times.

Reads the four IDX files (gzip or raw) from a folder, scales pixels to [0, 1] as float64 (the
dtype latentlab's PCA computes in), and fits each solver `--repeats` times, printing one JSON object
per solver with the best wall time and the first explained-variance ratios.

    pip install scikit-learn
    python3 bench/pca_sklearn.py --data /usr/share/datasets/fashion-mnist --k 50
"""
import argparse
import gzip
import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def read_images(folder):
    for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
        path = Path(folder) / name
        if path.exists():
            raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
            ndim = raw[3]
            dims = np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">u4")
            data = np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8)
            return data.reshape(int(dims[0]), -1)
    raise SystemExit(f"{folder}: no train-images-idx3-ubyte[.gz]")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--solvers", default="full,covariance_eigh,randomized")
    args = parser.parse_args()

    import sklearn
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_info

    x = read_images(args.data).astype(np.float64) / 255.0
    blas = [f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)" for i in threadpool_info()]
    for solver in args.solvers.split(","):
        best = float("inf")
        for _ in range(args.repeats):
            pca = PCA(n_components=args.k, svd_solver=solver, random_state=0)
            start = time.perf_counter()
            pca.fit(x)
            best = min(best, time.perf_counter() - start)
        print(json.dumps({
            "tool": f"scikit-learn {sklearn.__version__}",
            "solver": solver,
            "seconds": best,
            "n": x.shape[0],
            "d": x.shape[1],
            "k": args.k,
            "ratio_first": pca.explained_variance_ratio_[:3].tolist(),
            "blas": blas,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }), flush=True)


if __name__ == "__main__":
    main()
