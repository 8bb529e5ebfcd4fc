#!/usr/bin/env python3
"""Cut the embedded class-balanced Fashion-MNIST subset from the full set.

Keeps, in file order, the first 1,000 training images of each class (10,000 in all) and the
first 200 test images of each class (2,000), and writes them as gzipped IDX files. Standard
library only; the output is byte-for-byte reproducible (gzip mtime 0).

    python3 data/cut_subset.py /usr/share/datasets/fashion-mnist data/fashion-mnist-subset
"""
import gzip
import struct
import sys
from pathlib import Path


def read_idx(path):
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def write_idx(path, dims, body):
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(header + body)


def cut(src, dst, stem, per_class):
    (n, rows, cols), images = read_idx(src / f"{stem}-images-idx3-ubyte.gz")
    (_,), labels = read_idx(src / f"{stem}-labels-idx1-ubyte.gz")
    size = rows * cols
    taken = {}
    keep = []
    for i, label in enumerate(labels):
        if taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            keep.append(i)
    write_idx(dst / f"{stem}-images-idx3-ubyte.gz", (len(keep), rows, cols), b"".join(images[i * size : (i + 1) * size] for i in keep))
    write_idx(dst / f"{stem}-labels-idx1-ubyte.gz", (len(keep),), bytes(labels[i] for i in keep))
    print(f"{stem}: kept {len(keep)} of {n} images, {per_class} per class")


if __name__ == "__main__":
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    cut(src, dst, "train", 1000)
    cut(src, dst, "t10k", 200)
