"""Writes tests/fixtures/image_metrics.json: pairs of byte images and scikit-image's PSNR and SSIM
of them (data_range 1 on pixels / 255; SSIM with its defaults: 7x7 uniform window, K1 0.01,
K2 0.03, sample covariance, the border of 3 pixels cropped; per channel, then the mean).

    pip install scikit-image && python3 bench/image_metrics_reference.py
"""
import json
import sys

import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def pair(rng, shape):
    c, h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([0.5 + 0.4 * np.sin(x / (3 + k) + y / (5 + k)) for k in range(c)])
    first = np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1)
    second = np.clip(first + rng.normal(0, 0.1, base.shape), 0, 1)
    second[:, h // 4 : h // 2, w // 4 : w // 2] = 0.2  # a flat patch: structure lost there
    to_bytes = lambda a: np.round(a * 255).astype(np.uint8)
    return to_bytes(first), to_bytes(second)


rng = np.random.default_rng(0)
cases = []
for shape in [(1, 28, 28), (3, 32, 32), (1, 16, 20)]:
    a, b = pair(rng, shape)
    fa, fb = a / 255.0, b / 255.0
    cases.append(
        {
            "shape": list(shape),
            "a": a.flatten().tolist(),
            "b": b.flatten().tolist(),
            "psnr": peak_signal_noise_ratio(fa, fb, data_range=1.0),
            "ssim": structural_similarity(fa, fb, data_range=1.0, channel_axis=0),
        }
    )
out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/image_metrics.json"
with open(out, "w") as f:
    json.dump({"scikit_image": skimage.__version__, "cases": cases}, f)
print(out, [(c["shape"], round(c["psnr"], 4), round(c["ssim"], 6)) for c in cases])
