#!/usr/bin/env python3
"""The pix2pix U-Net that `latentlab train pix2pix --task inpaint --discriminator none` builds for
28x28 gray images, in PyTorch, to time one training step.

Same network as src/models/unet.rs: the input (masked image and mask, 2 channels) zero-padded to
32x32, 5 levels of Conv(4, stride 2, padding 1) -> BN -> LeakyReLU(0.2) (no BN on the first),
widths 32, 64, 128, 256, 256 (doubling up to 8x the first); up blocks ConvTranspose(4, 2, 1) ->
BN -> ReLU on the previous block joined with the matching skip, a last ConvTranspose to 1
channel, sigmoid, cropped back to 28x28. Biases only where no batch norm follows (the first and
last layers), N(0, 0.02) weights. One step: draw a mask
per image (the centre square or a random rectangle, half each; latentlab draws free-form strokes,
the cost is in the network), L1 on the missing pixels, Adam lr 1e-3, betas (0.5, 0.999).

  python3 bench/unet_torch.py [--steps 30] [--batch 64] [--threads 2] [--device cpu]

Prints images/s and peak memory as JSON.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn


class Unet(nn.Module):
    def __init__(self, in_channels=2, out_channels=1, width=32, levels=5):
        super().__init__()
        widths = [min(width << i, 8 * width) for i in range(levels)]
        self.downs = nn.ModuleList()
        previous = in_channels
        for i, w in enumerate(widths):
            layers = [nn.Conv2d(previous, w, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2))
            self.downs.append(nn.Sequential(*layers))
            previous = w
        self.ups = nn.ModuleList()
        for i in reversed(range(1, levels)):
            inputs = widths[i] if i == levels - 1 else 2 * widths[i]
            self.ups.append(
                nn.Sequential(
                    nn.ConvTranspose2d(inputs, widths[i - 1], 4, 2, 1, bias=False),
                    nn.BatchNorm2d(widths[i - 1]),
                    nn.ReLU(),
                )
            )
        self.to_image = nn.ConvTranspose2d(2 * widths[0], out_channels, 4, 2, 1)

    def forward(self, x):
        x = F.pad(x, (2, 2, 2, 2))  # 28 -> 32
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        h = skips[-1]
        for i, up in enumerate(self.ups):
            if i > 0:
                h = torch.cat([h, skips[-1 - i]], 1)
            h = up(h)
        h = torch.cat([h, skips[0]], 1)
        return torch.sigmoid(self.to_image(h))[:, :, 2:30, 2:30]


def masks(batch, device):
    missing = torch.zeros(batch, 1, 28, 28, device=device)
    missing[: batch // 2, :, 7:21, 7:21] = 1
    for i in range(batch // 2, batch):
        top, left = torch.randint(0, 14, (2,)).tolist()
        missing[i, :, top : top + 14, left : left + 14] = 1
    return missing


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = Unet().to(device)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-8)
    images = torch.rand(args.batch, 1, 28, 28, device=device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        missing = masks(args.batch, device)
        x = torch.cat([images * (1 - missing), missing], 1)
        out = net(x)
        loss = ((out - images).abs() * missing).sum() / (missing.sum() + 1e-6)
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
