#!/usr/bin/env bash
# The MPI path run for real on this machine: `mpirun -n 2 --oversubscribe` against one process.
# Installs Open MPI from Debian, builds `--features mpi`, then checks
#   1. training (autoencoder): 2 ranks of --batch-size 32 equal one process of --batch-size 64 (float rounding
#      only), and a 2-rank run interrupted at an epoch and resumed equals the straight one;
#   2. the same for a GAN (MLP networks, both steps split; batch norm would normalize each rank's
#      share by its own statistics), ESPCN and a conditional diffusion model;
#   3. PCA: 2 ranks streaming their chunks equal one process streaming all of them.
# Usage: bash bench/mpi-check.sh   (as root; CI does not run it)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mpirun >/dev/null || ! [ -e /usr/include/x86_64-linux-gnu/openmpi ] && ! [ -e /usr/lib/x86_64-linux-gnu/openmpi/include ]; then
  apt-get install -y --no-install-recommends libopenmpi-dev openmpi-bin libclang-dev pkg-config
fi
cargo build --release --features mpi
B="$PWD/target/release/latentlab"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI="mpirun -n 2 --oversubscribe"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
COMMON="ae --data embedded --limit 1000 --latent 8 --hidden 64 --seed 3 --quiet"

$B train $COMMON --batch-size 64 --epochs 2 --out "$W/one"
$MPI $B train $COMMON --batch-size 32 --epochs 2 --distributed mpi --out "$W/ranks"
$MPI $B train $COMMON --batch-size 32 --epochs 1 --distributed mpi --out "$W/resumed"
$MPI $B train --resume "$W/resumed" --epochs 2 --distributed mpi --quiet

GAN="gan --generator mlp --discriminator mlp --hidden 32,32 --latent 8 --k 2 --data embedded --limit 512 --seed 3 --epochs 2 --quiet"
$B train $GAN --batch-size 64 --out "$W/gan-one"
$MPI $B train $GAN --batch-size 32 --distributed mpi --out "$W/gan-ranks"
ESPCN="espcn --scale 2 --width 8 --data embedded --limit 512 --seed 3 --epochs 2 --quiet"
$B train $ESPCN --batch-size 64 --out "$W/espcn-one"
$MPI $B train $ESPCN --batch-size 32 --distributed mpi --out "$W/espcn-ranks"
DIFFUSION="diffusion --conditional --width 8 --levels 1 --timesteps 50 --data embedded --limit 512 --seed 3 --epochs 2 --quiet"
$B train $DIFFUSION --batch-size 64 --out "$W/diffusion-one"
$MPI $B train $DIFFUSION --batch-size 32 --distributed mpi --out "$W/diffusion-ranks"

$B pca --k 50 --stream --quiet --out "$W/pca-one"
$MPI $B pca --k 50 --distributed mpi --quiet --out "$W/pca-ranks"

python3 - "$W" <<'PY'
import json, struct, sys
w = sys.argv[1]
def tensors(path, fmt):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    header = json.loads(b[8:8 + n]); data = b[8 + n:]
    size = struct.calcsize(fmt)
    return {k: struct.unpack('<%d%s' % ((v['data_offsets'][1] - v['data_offsets'][0]) // size, fmt),
                             data[v['data_offsets'][0]:v['data_offsets'][1]])
            for k, v in header.items() if k != '__metadata__'}
def gap(a, b):
    return max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a)
one, ranks, resumed = (tensors(f'{w}/{r}/model.safetensors', 'f') for r in ('one', 'ranks', 'resumed'))
pca_one, pca_ranks = (tensors(f'{w}/{r}/pca.safetensors', 'd') for r in ('pca-one', 'pca-ranks'))
def pair(name):
    return gap(*(tensors(f'{w}/{name}-{r}/model.safetensors', 'f') for r in ('one', 'ranks')))
results = {
    'train: 1 process x 64 vs 2 ranks x 32, largest weight difference': gap(one, ranks),
    'gan: 1 process x 64 vs 2 ranks x 32': pair('gan'),
    'espcn: 1 process x 64 vs 2 ranks x 32': pair('espcn'),
    # Biases a GroupNorm follows have a gradient that is zero but for rounding, which Adam's
    # first steps still move by about ±lr: the largest differences are theirs.
    'diffusion: 1 process x 64 vs 2 ranks x 32': pair('diffusion'),
    'train: 2 ranks straight vs interrupted and resumed': gap(ranks, resumed),
    'pca: 1 process vs 2 ranks, largest component difference': gap(pca_one, pca_ranks),
}
for name, value in results.items():
    print(f'{name}: {value:.3e}')
ok = results['train: 1 process x 64 vs 2 ranks x 32, largest weight difference'] < 1e-4 \
    and results['gan: 1 process x 64 vs 2 ranks x 32'] < 1e-4 \
    and results['espcn: 1 process x 64 vs 2 ranks x 32'] < 1e-4 \
    and results['diffusion: 1 process x 64 vs 2 ranks x 32'] < 2e-3 \
    and results['train: 2 ranks straight vs interrupted and resumed'] == 0.0 \
    and results['pca: 1 process vs 2 ranks, largest component difference'] < 1e-12
print('MPI check passed' if ok else 'MPI check FAILED')
sys.exit(0 if ok else 1)
PY
