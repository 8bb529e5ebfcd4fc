#!/usr/bin/env bash
# The editing protocol on the full Fashion-MNIST test set (10,000 images, from Debian's
# dataset-fashion-mnist) and on the embedded colour tiles' test split (453): every method of every
# job (inpainting, uncropping, colorization, super-resolution ×2 and ×4) scored by `latentlab
# eval-edit`, one JSON file each, then one Markdown table.
#
#   bash bench/edit_protocol.sh [OUT]       (default runs/edit-protocol; ~2.5 h on a 2-core CPU)
#   N_SLOW=500 bash bench/edit_protocol.sh   (GAN inversion on the first 500 only)
#   PASSES=fast bash bench/edit_protocol.sh  (train and score everything but GAN inversion and
#                                             the nearest training image)
#
# Trains what the zero-shot and trained methods need first (each run is skipped when its folder
# already holds model.safetensors), then scores the cheap methods before the slow ones (nearest
# compares with all 60,000 training images; GAN inversion runs 4 x 200 generator steps).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/edit-protocol}
FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}
N=${N:-10000}
# GAN inversion costs about 0.06 s per image on 2 cores (4 starts x 50 steps, then 150 for the
# best, through the width-32 generator): N_SLOW images of the same order (the classes in turn)
# keep it to minutes.
N_SLOW=${N_SLOW:-$N}
if [ -z "${BIN:-}" ]; then
  BIN=target/release/latentlab
  cargo build --release --quiet
fi
mkdir -p "$OUT"

train() { # folder, then `train` arguments
  local folder=$1; shift
  [ -f "$OUT/$folder/model.safetensors" ] && return 0
  "$BIN" train "$@" --out "$OUT/$folder" --quiet --force
}
train classifier classifier --data "$FASHION" --epochs 3
train vae vae --data "$FASHION" --epochs 10
train gan gan --data "$FASHION" --ngf 32 --ndf 32 --epochs 3 --batch-size 64 --lr 5e-4
train pix2pix-inpaint-l1 pix2pix --task inpaint --discriminator none --data "$FASHION" --epochs 2 --batch-size 64
train pix2pix-inpaint pix2pix --task inpaint --ndf 16 --data "$FASHION" --epochs 2 --batch-size 64
train pix2pix-uncrop pix2pix --task uncrop --ndf 16 --data "$FASHION" --epochs 2 --batch-size 64
train pix2pix-uncrop-l1 pix2pix --task uncrop --discriminator none --data "$FASHION" --epochs 2 --batch-size 64
train classifier-rgb classifier --data embedded-rgb --epochs 10
train vae-rgb vae --arch conv --data embedded-rgb --epochs 20
train pix2pix-colorize pix2pix --task colorize --ndf 16 --data embedded-rgb --epochs 20 --batch-size 64
for scale in 2 4; do
  train espcn-x$scale espcn --scale $scale --data "$FASHION" --epochs 10 --batch-size 64
  train espcn-rgb-x$scale espcn --scale $scale --data embedded-rgb --epochs 100 --batch-size 64
done
train espcn-x4-patchgan espcn --scale 4 --discriminator patchgan --ndf 16 --data "$FASHION" --epochs 10 --batch-size 64
train espcn-rgb-x4-patchgan espcn --scale 4 --discriminator patchgan --ndf 16 --data embedded-rgb --epochs 100 --batch-size 64

score() { # images, job, method label, --with value, data, classifier, then the job's flags
  local n=$1 job=$2 label=$3 with=$4 data=$5 classifier=$6; shift 6
  local json="$OUT/scores/$job/$label.json"
  [ -f "$json" ] && return 0
  mkdir -p "$(dirname "$json")"
  "$BIN" eval-edit "$@" --with "$with" --data "$data" --classifier "$OUT/$classifier" \
    --n "$n" --out "$json" --quiet
}
JOBS=("inpaint-center:--task inpaint --mask center" "inpaint-free:--task inpaint --mask free"
      "uncrop-left:--task uncrop --side left" "uncrop-right:--task uncrop --side right"
      "uncrop-top:--task uncrop --side top" "uncrop-bottom:--task uncrop --side bottom")
for pass in ${PASSES:-fast slow}; do
  for entry in "${JOBS[@]}"; do
    job=${entry%%:*}; flags=${entry#*:}
    p2p=pix2pix-uncrop; [[ $job == inpaint-* ]] && p2p=pix2pix-inpaint
    if [ $pass = fast ]; then
      for m in mean pca; do score "$N" "$job" $m $m "$FASHION" classifier $flags; done
      score "$N" "$job" vae "$OUT/vae" "$FASHION" classifier $flags
      score "$N" "$job" pix2pix "$OUT/$p2p" "$FASHION" classifier $flags
      score "$N" "$job" pix2pix-L1 "$OUT/$p2p-l1" "$FASHION" classifier $flags
    else
      score "$N_SLOW" "$job" gan "$OUT/gan" "$FASHION" classifier $flags
      score "$N" "$job" nearest nearest "$FASHION" classifier $flags
    fi
  done
  for scale in 2 4; do
    sr="--task superres --scale $scale"
    if [ $pass = fast ]; then
      for m in nearest bicubic pca; do
        score "$N" superres-x$scale $m $m "$FASHION" classifier $sr
        score "$N" superres-rgb-x$scale $m $m embedded-rgb classifier-rgb $sr
      done
      score "$N" superres-x$scale vae "$OUT/vae" "$FASHION" classifier $sr
      score "$N" superres-x$scale espcn "$OUT/espcn-x$scale" "$FASHION" classifier $sr
      score "$N" superres-rgb-x$scale vae "$OUT/vae-rgb" embedded-rgb classifier-rgb $sr
      score "$N" superres-rgb-x$scale espcn "$OUT/espcn-rgb-x$scale" embedded-rgb classifier-rgb $sr
      if [ $scale = 4 ]; then
        score "$N" superres-x4 espcn-patchgan "$OUT/espcn-x4-patchgan" "$FASHION" classifier $sr
        score "$N" superres-rgb-x4 espcn-patchgan "$OUT/espcn-rgb-x4-patchgan" embedded-rgb classifier-rgb $sr
      fi
    else
      score "$N_SLOW" superres-x$scale gan "$OUT/gan" "$FASHION" classifier $sr
    fi
  done
  if [ $pass = fast ]; then
    for m in gray mean nearest pca; do
      score "$N" colorize $m $m embedded-rgb classifier-rgb --task colorize
    done
    score "$N" colorize vae "$OUT/vae-rgb" embedded-rgb classifier-rgb --task colorize
    score "$N" colorize pix2pix "$OUT/pix2pix-colorize" embedded-rgb classifier-rgb --task colorize
  fi
done

python3 - "$OUT/scores" <<'EOF'
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
print("| job | method | n | PSNR hole (dB) | PSNR whole (dB) | SSIM | L1 | CA | classifier FD | ms/image |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
order = ["mean", "gray", "nearest", "bicubic", "pca", "vae", "gan", "pix2pix-L1", "pix2pix",
         "espcn", "espcn-patchgan"]
for job in sorted(p.name for p in root.iterdir()):
    rows = {p.stem: json.loads(p.read_text()) for p in (root / job).glob("*.json")}
    for label in [m for m in order if m in rows]:
        s = rows[label]
        print(f"| {job} | {label} | {s['n']} | {s['psnr_hole']:.2f} | {s['psnr_whole']:.2f} | "
              f"{s['ssim']:.3f} | {s['l1']:.4f} | {100 * s['classifier_accuracy']:.1f} % | "
              f"{s['classifier_fd']:.2f} | {1000 * s['seconds_per_image']:.2f} |")
EOF
