#!/usr/bin/env bash
# Builds and packs what `bench/gpu.sh` needs on the GPU machine, from the repository's root:
#   .gpu/workloads.xz, .gpu/latentlab.xz  the `vulkan` builds, stripped (128 MB each, 25 in xz:
#                                         with the tree, 62 MB of the 64 MiB a call may carry)
#   .gl/*.deb                             the Vulkan loader and glvnd, which that machine lacks
# Both folders are git-ignored; the device tool's `carry` takes them: ["./.gl", "./.gpu"].
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu .gl
bench=$(cargo bench --no-run --bench workloads --features vulkan 2>&1 | tee /dev/stderr |
    sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
cargo build --release --features vulkan
for pair in "workloads:$bench" "latentlab:target/release/latentlab"; do
    name=${pair%%:*} path=${pair#*:}
    strip -o ".gpu/$name" "$path"
    xz -9 -T2 -f ".gpu/$name"
done
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    mkdir -p /tmp/amd64/partial
    # shellcheck disable=SC2086
    apt-get $o update >/dev/null
    # shellcheck disable=SC2086
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -ch .gpu/* .gl/* | tail -1
