#!/usr/bin/env bash
# Issue 7's GPU rows in one call of the device tool (an NVIDIA H200 here), from the repository's
# root, after `bash bench/gpu-prepare.sh` on the build machine:
#   device run: carry [".gl", ".gpu"], command "bash bench/gpu.sh", timeout_s 590
# Every step has its own time limit inside a 560 s budget, and writes to $OUT as it goes, so a
# step that runs long still leaves the others' figures:
#   gpu.txt     the card, and the wall time of W1's benchmark process cold (kernels compiled and
#               autotuned) and warm (cubecl's autotune cache in target/environment, the driver's
#               shader cache)
#   bench.log   each workload's rounds and table row: latentlab on Vulkan vs PyTorch on CUDA
#   train.log, samples.png, reconstructions.png   `latentlab train vae --device vulkan`, end to end
set -u
out=${OUT:-/tmp/latentlab-gpu}
mkdir -p "$out"
budget=560
left() { echo $((budget - SECONDS)); }
# cap N: N seconds, or what is left of the budget less 5.
cap() { local l=$(($(left) - 5)); echo $(($1 < l ? $1 : (l > 1 ? l : 1))); }

# LATENTLAB_BENCH_DEVICE=cpu tries this script's steps on a machine without a GPU.
device=${LATENTLAB_BENCH_DEVICE:-vulkan}
if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
bin=/tmp/latentlab-bin
mkdir -p $bin
for b in workloads latentlab; do
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        ".gpu/$b.xz" "$bin/$b" && chmod +x "$bin/$b"
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))' | tee -a "$out/gpu.txt"
data=data/fashion-mnist-subset

wall() { # label, limit, command...
    local label=$1 limit=$2 start rc
    shift 2
    start=$(date +%s%N)
    timeout "$(cap "$limit")" "$@" >>"$out/gpu.txt" 2>&1
    rc=$?
    echo "$label: $((($(date +%s%N) - start) / 1000000)) ms, exit $rc" | tee -a "$out/gpu.txt"
}
wall "W1 process, cold" 150 $bin/workloads --child W1 --device $device --data $data
wall "W1 process, warm" 60 $bin/workloads --child W1 --device $device --data $data

for w in W1:60 W3:90 W2:150 W4:90; do
    [ "$(left)" -gt 30 ] || break
    timeout "$(cap "${w#*:}")" $bin/workloads --device $device --only "${w%%:*}" --rounds 2 \
        --random-inception --data $data 2>&1 | tee -a "$out/bench.log"
done

if [ "$(left)" -gt 40 ]; then
    timeout "$(cap 120)" $bin/latentlab train vae --device $device --data embedded --epochs 1 \
        --out /tmp/vk-vae --force >"$out/train.log" 2>&1
    echo "train exit $?" >>"$out/train.log"
    cp /tmp/vk-vae/samples/epoch_001.png "$out/samples.png" 2>/dev/null
    cp /tmp/vk-vae/reconstructions/epoch_001.png "$out/reconstructions.png" 2>/dev/null
fi
echo "done in ${SECONDS} s" | tee -a "$out/gpu.txt"
