#!/usr/bin/env python3
"""The pytorch/examples VAE recipe, for comparison with `latentlab train vae`.

Same model (784-400-20, 20-400-784, ReLU, sigmoid output), same loss (BCE summed over pixels
plus KL, per image), same optimizer (Adam, lr 1e-3, eps 1e-8), batch 128, 10 epochs, pixels
in [0, 1] (not binarized), z sampled at test time too, as in
https://github.com/pytorch/examples/blob/main/vae/main.py. The data are read from the IDX
files directly so no torchvision download happens.

  python3 bench/vae_torch.py recipe [--data DIR] [--epochs 10] [--seed 1] [--json PATH]
  python3 bench/vae_torch.py throughput [--arch mlp|conv] [--data DIR] [--steps 200] [--repeats 3] [--threads 2] [--device cpu|cuda]
  python3 bench/vae_torch.py load --weights RUN/model.safetensors [--data DIR]

`recipe` prints and writes one row per epoch: average train loss (over the epoch, as the example
prints it) and test loss, in nats per image. `throughput` times training steps (forward,
backward, Adam) at batch 128 of this model or, with `--arch conv`, of latentlab's default conv
VAE (ConvVAE below), and prints images/s and peak memory as JSON. `load` reads the weights a
`latentlab train vae` run wrote (safetensors, PyTorch names and layouts) into this script's
model and prints its test numbers, to hold against `latentlab eval`.
"""
import argparse
import gzip
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(folder, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    sys.exit(f"error: {folder}: no {stem}[.gz]")


def load(folder):
    train = read_idx(find(folder, "train-images-idx3-ubyte"))
    test = read_idx(find(folder, "t10k-images-idx3-ubyte"))
    to_float = lambda a: torch.from_numpy(a.reshape(len(a), 784).astype(np.float32) / 255.0)
    return to_float(train), to_float(test)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


class ConvVAE(nn.Module):
    """latentlab's default conv VAE (`--arch conv`): two 4x4 stride-2 convolutions (32, 64
    channels) to μ and log σ² (z of 20), mirrored by transposed convolutions; Bernoulli logits."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten()
        )
        self.to_mean = nn.Linear(64 * 7 * 7, 20)
        self.to_log_variance = nn.Linear(64 * 7 * 7, 20)
        self.project = nn.Linear(20, 64 * 7 * 7)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1)
        )

    def forward(self, x):
        h = self.encoder(x.view(-1, 1, 28, 28))
        mu, logvar = self.to_mean(h), self.to_log_variance(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.decoder(F.relu(self.project(z)).view(-1, 64, 7, 7))
        return logits.view(-1, 784), mu, logvar


def conv_loss_function(logits, x, mu, logvar):
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce, kld


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce, kld


def recipe(args):
    torch.manual_seed(args.seed)
    train, test = load(args.data)
    model = VAE()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    rows = []
    for epoch in range(1, args.epochs + 1):
        start = time.time()
        model.train()
        order = torch.randperm(len(train))
        total = recon_sum = kl_sum = 0.0
        for i in range(0, len(train), 128):
            x = train[order[i : i + 128]]
            optimizer.zero_grad()
            recon, mu, logvar = model(x)
            bce, kld = loss_function(recon, x, mu, logvar)
            (bce + kld).backward()
            optimizer.step()
            total += (bce + kld).item()
            recon_sum += bce.item()
            kl_sum += kld.item()
        seconds = time.time() - start
        model.eval()
        t_total = t_recon = t_kl = 0.0
        with torch.no_grad():
            for i in range(0, len(test), 128):
                x = test[i : i + 128]
                recon, mu, logvar = model(x)
                bce, kld = loss_function(recon, x, mu, logvar)
                t_total += (bce + kld).item()
                t_recon += bce.item()
                t_kl += kld.item()
        n, m = len(train), len(test)
        row = {
            "epoch": epoch,
            "train": {"loss": total / n, "recon": recon_sum / n, "kl": kl_sum / n},
            "test": {"loss": t_total / m, "recon": t_recon / m, "kl": t_kl / m},
            "seconds": seconds,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(), "epochs": rows}, f, indent=1)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_figures(device):
    """What a JSON line says of the device: its name and peak memory, on a GPU."""
    if device.type != "cuda":
        return {}
    return {"device": torch.cuda.get_device_name(device),
            "peak_device_mib": torch.cuda.max_memory_allocated(device) / 2**20}


def throughput(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    train, _ = load(args.data)
    model, loss = (VAE(), loss_function) if args.arch == "mlp" else (ConvVAE(), conv_loss_function)
    model = model.to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    # At most 64 batches, as latentlab's side keeps: the data stay on the device.
    batches = [train[i * 128 : (i + 1) * 128].to(device) for i in range(min(64, len(train) // 128))]

    def step(x):
        optimizer.zero_grad()
        recon, mu, logvar = model(x)
        bce, kld = loss(recon, x, mu, logvar)
        (bce + kld).backward()
        optimizer.step()

    for i in range(args.warmup):
        step(batches[i % len(batches)])
    synchronize(device)
    best = 0.0
    for _ in range(args.repeats):
        start = time.perf_counter()
        for i in range(args.steps):
            step(batches[i % len(batches)])
        synchronize(device)
        best = max(best, args.steps * 128 / (time.perf_counter() - start))
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "arch": args.arch,
                      "batch": 128, "steps": args.steps, "images_per_second": best,
                      "peak_rss_mib": peak_rss_mib, **device_figures(device)}))


# latentlab's parameter names for the pytorch/examples layout.
LATENTLAB_NAMES = {
    "fc1": "encoder.layers.0",
    "fc21": "to_mean",
    "fc22": "to_log_variance",
    "fc3": "decoder.layers.0",
    "fc4": "decoder.layers.1",
}


def evaluate_weights(args):
    from safetensors.torch import load_file

    tensors = load_file(args.weights)
    model = VAE()
    state = {}
    for ours, theirs in LATENTLAB_NAMES.items():
        for leaf in ("weight", "bias"):
            state[f"{ours}.{leaf}"] = tensors[f"{theirs}.{leaf}"]
    model.load_state_dict(state)  # strict: every name and shape must match
    torch.manual_seed(args.seed)
    _, test = load_data_only_test(args.data)
    recon_sum = kl_sum = mse_sum = 0.0
    with torch.no_grad():
        for i in range(0, len(test), 500):
            x = test[i : i + 500]
            recon, mu, logvar = model(x)
            bce, kld = loss_function(recon, x, mu, logvar)
            recon_sum += bce.item()
            kl_sum += kld.item()
            mse_sum += ((model.decode(mu) - x) ** 2).sum().item()
    n = len(test)
    print(json.dumps({"torch": torch.__version__, "test_images": n,
                      "recon": recon_sum / n, "kl": kl_sum / n, "neg_elbo": (recon_sum + kl_sum) / n,
                      "reconstruction_mse": mse_sum / (n * 784)}))


def load_data_only_test(folder):
    test = read_idx(find(folder, "t10k-images-idx3-ubyte"))
    return None, torch.from_numpy(test.reshape(len(test), 784).astype(np.float32) / 255.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["recipe", "throughput", "load"])
    parser.add_argument("--weights")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--arch", choices=["mlp", "conv"], default="mlp", help="throughput: which VAE")
    parser.add_argument("--device", default="cpu", help="throughput: cpu or cuda")
    args = parser.parse_args()
    {"recipe": recipe, "throughput": throughput, "load": evaluate_weights}[args.mode](args)


if __name__ == "__main__":
    main()
