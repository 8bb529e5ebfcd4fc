#!/usr/bin/env python3
"""The ESPCN that `latentlab train espcn --scale 4` builds for 28x28 gray images, in PyTorch, to
time one training step.

Same network as src/models/espcn.rs: the image area-downsampled to 7x7 (avg_pool2d 4), Conv 5x5
to 64 -> tanh -> Conv 3x3 to 32 -> tanh -> Conv 3x3 to 16 -> pixel_shuffle(4), plus the 7x7
image upsampled by nearest neighbour; L1 against the image, Adam lr 1e-3, betas (0.9, 0.999).

  python3 bench/espcn_torch.py [--steps 200] [--batch 64] [--threads 2] [--device cpu]

Prints images/s and peak memory as JSON.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn


class Espcn(nn.Module):
    def __init__(self, channels=1, scale=4, width=64):
        super().__init__()
        self.scale = scale
        self.features = nn.Conv2d(channels, width, 5, padding=2)
        self.mapping = nn.Conv2d(width, width // 2, 3, padding=1)
        self.to_subpixels = nn.Conv2d(width // 2, channels * scale * scale, 3, padding=1)

    def forward(self, small):
        h = torch.tanh(self.features(small))
        h = torch.tanh(self.mapping(h))
        detail = F.pixel_shuffle(self.to_subpixels(h), self.scale)
        return detail + F.interpolate(small, scale_factor=self.scale, mode="nearest")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = Espcn().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    images = torch.rand(args.batch, 1, 28, 28, device=device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        small = F.avg_pool2d(images, 4)
        loss = (net(small) - images).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "images_per_second": args.steps * args.batch / seconds,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "torch": torch.__version__,
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
