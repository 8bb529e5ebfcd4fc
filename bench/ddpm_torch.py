#!/usr/bin/env python3
"""The diffusion denoiser of src/models/denoiser.rs (28x28 gray, width 32, 2 levels,
unconditional) in PyTorch, to time one training step of src/models/diffusion/'s simple loss.

Same network: sinusoidal embedding of t (sines then cosines, 32 dims) -> Linear 32->128 -> SiLU
-> Linear 128->128; Conv 3x3 in; per level a residual block (GroupNorm(8) -> SiLU -> Conv 3x3,
+ Linear(SiLU(time)), GroupNorm(8) -> SiLU -> Conv 3x3, + shortcut) and a 4x4 stride-2 conv
down; a residual block at 7x7; per level a 4x4 stride-2 transposed conv up, the skip joined, a
residual block (1x1 shortcut); GroupNorm -> SiLU -> Conv 3x3 out. Step: t uniform in 1..1000,
eps ~ N(0, I), x_t from the cosine schedule, MSE(eps, net(x_t, t)), Adam lr 2e-4.

  python3 bench/ddpm_torch.py [--steps 20] [--batch 64] [--threads 2] [--device cpu]
  python3 bench/ddpm_torch.py --sample [--steps 20]   # DDIM (eta 0, x0 clipped) in --steps steps
  python3 bench/ddpm_torch.py --latent [--steps 20]   # latent diffusion's U-Net: 4x8x8 codes,
      width 64, self-attention at 4x4 (GroupNorm(8) -> nn.MultiheadAttention, 4 heads, + input)

Prints images/s (with --sample: network evaluations of one image per second) and peak memory
as JSON.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

GROUPS = 8


def embedding(t, dims):
    half = dims // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, time):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(time, cout)
        self.norm2 = nn.GroupNorm(GROUPS, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, time):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(time))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class Attention(nn.Module):
    """src/models/attention.rs's self-attention block: GroupNorm, then multi-head attention over
    the map's positions, added to the input."""

    def __init__(self, channels, heads=4):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x):
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        normed = self.norm(x).flatten(2).transpose(1, 2)
        out, _ = self.attention(normed, normed, normed, need_weights=False)
        return (tokens + out).transpose(1, 2).reshape(n, c, h, w)


class Denoiser(nn.Module):
    def __init__(self, channels=1, width=32, levels=2, side=28, attention=()):
        super().__init__()
        time = 4 * width
        widths = [width] + [2 * width] * levels
        self.width = width
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
        self.time_hidden = nn.Linear(width, time)
        self.time_out = nn.Linear(time, time)
        self.downs = nn.ModuleList(ResBlock(widths[i], widths[i], time) for i in range(levels))
        attend = lambda level: (
            Attention(widths[level]) if side >> level in attention else nn.Identity()
        )
        self.down_attention = nn.ModuleList(attend(i) for i in range(levels))
        self.up_attention = nn.ModuleList(attend(i) for i in reversed(range(levels)))
        self.middle_attention = attend(levels)
        self.down_samples = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1) for i in range(levels)
        )
        self.middle = ResBlock(widths[levels], widths[levels], time)
        self.up_samples = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 4, stride=2, padding=1)
            for i in reversed(range(levels))
        )
        self.ups = nn.ModuleList(
            ResBlock(2 * widths[i], widths[i], time) for i in reversed(range(levels))
        )
        self.norm_out = nn.GroupNorm(GROUPS, width)
        self.conv_out = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, x, t):
        time = self.time_out(F.silu(self.time_hidden(embedding(t, self.width))))
        h = self.conv_in(x)
        skips = []
        for block, attention, down in zip(self.downs, self.down_attention, self.down_samples):
            h = attention(block(h, time))
            skips.append(h)
            h = down(h)
        h = self.middle_attention(self.middle(h, time))
        for up, block, attention in zip(self.up_samples, self.ups, self.up_attention):
            h = attention(block(torch.cat([up(h), skips.pop()], dim=1), time))
        return self.conv_out(F.silu(self.norm_out(h)))


def cosine_alpha_bars(steps=1000, offset=0.008):
    f = lambda t: math.cos((t / steps + offset) / (1 + offset) * math.pi / 2) ** 2
    bars, last = [1.0], 1.0
    for t in range(1, steps + 1):
        beta = min(1 - f(t) / f(t - 1), 0.999)
        last *= 1 - beta
        bars.append(last)
    return torch.tensor(bars, dtype=torch.float64)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--sample", action="store_true", help="time DDIM sampling instead")
    parser.add_argument("--latent", action="store_true", help="latent diffusion's U-Net instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.latent:
        shape = (4, 8, 8)
        net = Denoiser(channels=4, width=64, side=8, attention=(4,)).to(device)
    else:
        shape = (1, 28, 28)
        net = Denoiser().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
    images = torch.rand(args.batch, *shape, device=device) * 2 - 1
    bars = cosine_alpha_bars().to(device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        t = torch.randint(1, 1001, (args.batch,), device=device)
        noise = torch.randn_like(images)
        a = bars[t].float()[:, None, None, None]
        x_t = a.sqrt() * images + (1 - a).sqrt() * noise
        loss = F.mse_loss(net(x_t, t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def walk(steps):
        """DDIM, eta 0, from x_T ~ N(0, I) in `steps` evenly spaced steps, x0 clipped."""
        with torch.inference_mode():
            x = torch.randn(args.batch, *shape, device=device)
            times = sorted({-(-k * 1000 // steps) for k in range(1, steps + 1)}, reverse=True)
            for i, t in enumerate(times):
                s = times[i + 1] if i + 1 < len(times) else 0
                a_t, a_s = bars[t].item(), bars[s].item()
                eps = net(x, torch.full((args.batch,), t, device=device))
                x0 = ((x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)).clamp(-1, 1)
                eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
                x = math.sqrt(a_s) * x0 + math.sqrt(1 - a_s) * eps
        return x

    def timed(run):
        """Runs `run` once to warm up, then times a second run; prints the JSON line."""
        run(args.warmup)
        synchronize()
        start = time.perf_counter()
        run(args.steps)
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

    if args.sample:
        timed(walk)
    else:
        timed(lambda steps: [step() for _ in range(steps)])


if __name__ == "__main__":
    main()
