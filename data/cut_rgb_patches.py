#!/usr/bin/env python3
"""Cut the embedded colour set: 32x32 patches of the public-domain / CC0 photographs that ship
inside scikit-image's wheel on PyPI (skimage/data), for colorization offline.

Each photograph is resized (Pillow, Lanczos) so its shorter side is 96, 128, 192, 256 and 384 pixels,
and cut into non-overlapping 32x32 tiles. A tile goes to the test split when its centre lies in the
bottom fifth of the photograph, so no test pixel, at any scale, was seen in training. The label of
a tile is the photograph it came from. Output: gzipped IDX files, images (n, 3, 32, 32) uint8 in
channel-major order and labels (n,), with a zero gzip timestamp, so a rerun with the same
scikit-image and Pillow versions reproduces the files byte for byte. With a second folder, each
whole photograph is also written there as a PNG of longer side 128 (Lanczos), named by its class
(what `latentlab style --content embedded:astronaut` reads).

    pip install scikit-image==0.26.0 pillow==13.0.0
    python3 data/cut_rgb_patches.py data/photo-patches data/photos
"""
import gzip
import os
import struct
import sys
from pathlib import Path

import numpy as np
import skimage
from PIL import Image

# File in skimage/data, and the name the class gets; licences as skimage's data docstrings say.
PHOTOS = [
    ("astronaut.png", "astronaut"),  # NASA, public domain
    ("chelsea.png", "cat"),  # Stefan van der Walt, CC0
    ("coffee.png", "coffee"),  # Rachel Michetti, CC0
    ("rocket.jpg", "rocket"),  # SpaceX, public domain
    ("hubble_deep_field.jpg", "hubble"),  # NASA, public domain
    ("ihc.png", "ihc"),  # immunohistochemistry, no known copyright restrictions
    ("retina.jpg", "retina"),  # Häggström, CC0
]
SHORT_SIDES = [96, 128, 192, 256, 384]
TILE = 32


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def main(out, photos_out=None):
    data = Path(os.path.dirname(skimage.__file__)) / "data"
    splits = {"train": ([], []), "t10k": ([], [])}
    for label, (name, _) in enumerate(PHOTOS):
        photo = Image.open(data / name).convert("RGB")
        width, height = photo.size
        if photos_out is not None:
            photos_out.mkdir(parents=True, exist_ok=True)
            scale = 128 / max(width, height)
            small = photo.resize((round(width * scale), round(height * scale)), Image.LANCZOS)
            small.save(photos_out / f"{PHOTOS[label][1]}.png", optimize=True)
        for short in SHORT_SIDES:
            scale = short / min(width, height)
            w, h = round(width * scale), round(height * scale)
            pixels = np.asarray(photo.resize((w, h), Image.LANCZOS))  # [h, w, 3]
            for top in range(0, h - TILE + 1, TILE):
                for left in range(0, w - TILE + 1, TILE):
                    tile = pixels[top : top + TILE, left : left + TILE].transpose(2, 0, 1)
                    centre = (top + TILE / 2) / h
                    split = "t10k" if centre >= 0.8 else "train"
                    splits[split][0].append(tile)
                    splits[split][1].append(label)
    out.mkdir(parents=True, exist_ok=True)
    for stem, (tiles, labels) in splits.items():
        write_idx(out / f"{stem}-images-idx3-ubyte.gz", np.stack(tiles))
        write_idx(out / f"{stem}-labels-idx1-ubyte.gz", np.array(labels))
        counts = np.bincount(labels, minlength=len(PHOTOS))
        print(f"{stem}: {len(labels)} tiles; per photo {dict(zip([c for _, c in PHOTOS], counts.tolist()))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
