#!/usr/bin/env bash
# The GPU checks, in one run, for a machine with a CUDA GPU (the device machine of a session that
# is lent one): GpuNetwork's tests (tests/test_snn_gpu.py, whose GPU tier is skipped elsewhere),
# training on the GPU (tests/test_train.py's GPU test: a tiny net trained there, resumed on the CPU),
# `eventflow bench snn --device cuda`, and the SNN peers on the same GPU in the same run.
# Writes its logs to ${OUT:-gpu-check}/. Wheels of the peers (pure Python) may be given in .whl/.
#
#   OUT=/tmp/gpu bash tools/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/peers .whl/*.whl \
    && export PYTHONPATH=/tmp/peers${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 \
  || echo "eventflow install failed (see install.log)"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c 'import sys, torch, triton, numba, numpy; print(sys.version.split()[0], "torch", torch.__version__,
"triton", triton.__version__, "numba", numba.__version__, "numpy", numpy.__version__)'; } 2>&1 | tee "$OUT/env.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_snn_gpu.py -rs 2>&1 | tee "$OUT/tests.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_train.py -k "gpu or training_device" -rs 2>&1 | tee "$OUT/train.txt"
python3 -m eventflow bench snn --device cuda --steps 200 --warmup 20 --json 2>&1 | tee "$OUT/bench.jsonl"
python3 tools/bench_snn_peers.py --device cuda --batch 1 16 --steps 100 --warmup 10 --check 3 \
  --impl eventflow eventflow-eager snntorch norse spikingjelly torch onnxruntime 2>&1 | tee "$OUT/peers.txt"
timeout 150 python3 tools/bench_snn_peers.py --device cuda --batch 1 16 --steps 100 --warmup 10 --check 3 \
  --impl eventflow torch-compile 2>&1 | tee "$OUT/peers_compile.txt"
