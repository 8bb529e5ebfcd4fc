#!/usr/bin/env python3
"""The DCGAN that `latentlab train gan` builds, in PyTorch, to time one training iteration.

Same networks as src/models/gan/dcgan.rs for 32x32 images (3 channels by default), z of 100,
ngf = ndf = 64, no conv biases, N(0, 0.02) weights, batch norm with gamma from N(1, 0.02):

  G: Linear(100, 256*4*4) -> BN -> ReLU -> ConvT(256,128,4,2,1) -> BN -> ReLU
     -> ConvT(128,64,4,2,1) -> BN -> ReLU -> ConvT(64,3,4,2,1) -> Tanh
  D: Conv(3,64,4,2,1) -> LReLU(0.2) -> Conv(64,128,4,2,1) -> BN -> LReLU
     -> Conv(128,256,4,2,1) -> BN -> LReLU -> Conv(256,1,4) -> logit

One iteration is Algorithm 1 with k = 1, as src/train/gan.rs runs it: a D step (fresh noise,
G(z) detached, D on the real batch and on the fakes, BCE-with-logits, Adam) and a G step (fresh
noise, non-saturating loss, Adam), Adam lr 2e-4, betas (0.5, 0.999), eps 1e-8.

  python3 bench/dcgan_torch.py [--steps 50] [--batch 64] [--size 32] [--channels 3] [--threads 2]
      [--profile]

Prints images/s (real images per second, one iteration = one batch) and peak memory as JSON; --profile also
prints torch.profiler's table of where the time goes.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn


def generator(nz, ngf, channels):
    return nn.ModuleDict(
        {
            "project": nn.Linear(nz, ngf * 4 * 4 * 4, bias=False),
            "body": nn.Sequential(
                nn.BatchNorm2d(ngf * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ngf),
                nn.ReLU(True),
                nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False),
                nn.Tanh(),
            ),
        }
    )


def generate(g, z, ngf):
    return g["body"](g["project"](z).view(-1, ngf * 4, 4, 4))


def discriminator(ndf, channels):
    return nn.Sequential(
        nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False),
        nn.Flatten(),
    )


def init(module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, choices=[32])
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nz, ngf, ndf = 100, 64, 64
    device = torch.device(args.device)
    g, d = generator(nz, ngf, args.channels), discriminator(ndf, args.channels)
    g.apply(init)
    d.apply(init)
    g, d = g.to(device), d.to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    real = torch.rand(args.batch, args.channels, args.size, args.size, device=device) * 2 - 1

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def iteration():
        # D step: fresh noise, fakes detached.
        fake = generate(g, torch.randn(args.batch, nz, device=device), ngf).detach()
        real_logits, fake_logits = d(real), d(fake)
        d_loss = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # G step: fresh noise, non-saturating loss.
        fake_logits = d(generate(g, torch.randn(args.batch, nz, device=device), ngf))
        g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    for _ in range(args.warmup):
        iteration()
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        iteration()
    synchronize()
    seconds = time.perf_counter() - start
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(10):
                iteration()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    print(
        json.dumps(
            {
                "images_per_second": args.steps * args.batch / seconds,
                "seconds_per_iteration": seconds / args.steps,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "batch": args.batch,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                **({"device": torch.cuda.get_device_name(device),
                    "peak_device_mib": torch.cuda.max_memory_allocated(device) / 2**20}
                   if device.type == "cuda" else {}),
            }
        )
    )


if __name__ == "__main__":
    main()
