#!/usr/bin/env python3
"""The autoencoder-kl of src/models/autoencoder_kl.rs (28x28 gray padded to 32 with -1, f = 4,
4 latent channels, width 16: levels of 16 and 32 channels) in PyTorch, to time one training step.

Same network: Conv 3x3 in; per level a residual block (GroupNorm(8) -> SiLU -> Conv 3x3, twice,
+ shortcut, 1x1 where the widths differ) and a 3x3 stride-2 conv; a residual block at 8x8;
GroupNorm -> SiLU -> Conv 3x3 to 8 maps (mean and log-variance). Decoder: Conv 3x3 from 4 maps,
a residual block, per level a 4x4 stride-2 transposed conv and a residual block, GroupNorm ->
SiLU -> Conv 3x3 to 1 map, cropped to 28x28. Step: z = mean + exp(logvar/2)·eps, loss = sum |x - x'|
per image + 1e-6 KL, batch mean; Adam lr 1e-3.

  python3 bench/autoencoder_kl_torch.py [--steps 20] [--batch 128] [--threads 2] [--device cpu]

Prints images/s and peak memory as JSON.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = 8


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(GROUPS, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class AutoencoderKl(nn.Module):
    def __init__(self, channels=1, width=16, levels=2, latent=4):
        super().__init__()
        widths = [width * min(1 << i, 4) for i in range(levels)]
        bottom = widths[-1]
        self.encoder_in = nn.Conv2d(channels, width, 3, padding=1)
        previous, blocks, downs = width, [], []
        for w in widths:
            blocks.append(ResBlock(previous, w))
            downs.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
            previous = w
        self.encoder_blocks, self.downs = nn.ModuleList(blocks), nn.ModuleList(downs)
        self.encoder_middle = ResBlock(bottom, bottom)
        self.encoder_norm = nn.GroupNorm(GROUPS, bottom)
        self.encoder_out = nn.Conv2d(bottom, 2 * latent, 3, padding=1)
        self.decoder_in = nn.Conv2d(latent, bottom, 3, padding=1)
        self.decoder_middle = ResBlock(bottom, bottom)
        ups, blocks = [], []
        for level in reversed(range(levels)):
            w = widths[level]
            ups.append(nn.ConvTranspose2d(w, w, 4, stride=2, padding=1))
            blocks.append(ResBlock(w, width if level == 0 else widths[level - 1]))
        self.ups, self.decoder_blocks = nn.ModuleList(ups), nn.ModuleList(blocks)
        self.decoder_norm = nn.GroupNorm(GROUPS, width)
        self.decoder_out = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, x):
        h = self.encoder_in(F.pad(x, (2, 2, 2, 2), value=-1.0))
        for block, down in zip(self.encoder_blocks, self.downs):
            h = down(block(h))
        moments = self.encoder_out(F.silu(self.encoder_norm(self.encoder_middle(h))))
        mean, log_var = moments.chunk(2, dim=1)
        log_var = log_var.clamp(-30, 20)
        z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
        h = self.decoder_middle(self.decoder_in(z))
        for up, block in zip(self.ups, self.decoder_blocks):
            h = block(up(h))
        out = self.decoder_out(F.silu(self.decoder_norm(h)))[:, :, 2:30, 2:30]
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).flatten(1).sum(1)
        return out, kl


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = AutoencoderKl().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    images = torch.rand(args.batch, 1, 28, 28, device=device) * 2 - 1

    def step():
        out, kl = net(images)
        loss = (out - images).abs().flatten(1).sum(1).mean() + 1e-6 * kl.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

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
