#!/bin/bash
# The GPU device check, run on a lent GPU machine from a folder `.gpu/` that holds binaries
# built here (build/bin/govmesh, build/bin/govmesh_gpu_tests; nvcc targets sm_80 and sm_90)
# and their non-system shared libraries in .gpu/lib (the GPU machine cannot install packages):
#   mkdir -p .gpu/lib && cp build/bin/govmesh build/bin/govmesh_gpu_tests build/bin/govmesh_gpu_crypto_tests bench/device_check.sh .gpu/
#   for l in libz.so.1 libtbb.so.12 libcapnp-0.9.2.so libkj-0.9.2.so libcrypto.so.3; do cp -L /lib/x86_64-linux-gnu/$l .gpu/lib/; done
# then, on the device: bash .gpu/device_check.sh  (results under $OUT).
export LD_LIBRARY_PATH=$PWD/.gpu/lib
OUT=${OUT:-/tmp/govmesh-device-check}
mkdir -p "$OUT"
cd .gpu
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; grep -m1 "model name" /proc/cpuinfo; } 2>&1 | tee $OUT/device.txt
./govmesh_gpu_tests 2>&1 | tee $OUT/gpu_tests.log; echo "gpu tests exit ${PIPESTATUS[0]}" | tee -a $OUT/gpu_tests.log
[ -x ./govmesh_gpu_crypto_tests ] && { ./govmesh_gpu_crypto_tests 2>&1 | tee $OUT/gpu_crypto_tests.log; echo "gpu crypto tests exit ${PIPESTATUS[0]}" | tee -a $OUT/gpu_crypto_tests.log; }
timeout 200 ./govmesh bench crypto --seconds 0.5 2>&1 | tee $OUT/bench_crypto.jsonl.log
for args in "--policies 1000 --batch 4096" "--policies 1000 --batch 65536" "--policies 1000 --batch 1048576" "--policies 100000 --batch 4096"; do
  echo "== bench tables $args" | tee -a $OUT/bench.jsonl.log
  timeout 150 ./govmesh bench tables $args --seconds 1 --no-peer 2>&1 | tee -a $OUT/bench.jsonl.log
done
