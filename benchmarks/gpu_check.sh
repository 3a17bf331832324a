#!/usr/bin/env bash
# The GPU checks of the CuPy backend, as one prepared run on a machine with an NVIDIA GPU whose
# image has CuPy, PyTorch (CUDA), JAX (CUDA), numpy, safetensors, tqdm and click: layerwise
# runs from the source tree, nothing is installed. About 5-8 minutes on an H100/H200.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (OUT_DIR: where the logs go; default out/gpu)
#
# 1. the GPU tests (tests/test_gpu.py and the gpu-marked seam test): gradient checks in float64
#    on the GPU, parity with PyTorch on the same GPU, save on the GPU / load on the CPU;
# 2. benchmarks/run.py --device gpu: configs B, C, D, E against PyTorch eager (fused Adam),
#    torch.compile and JAX jit, training and inference, as ratios, with the GPU and versions.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python -c "import cupy; print('CuPy', cupy.__version__, cupy.cuda.runtime.getDeviceCount(), 'GPU(s)')" \
  2>&1 | tee "$out/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee -a "$out/env.txt"
status=0
python -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py tests/test_backend_seam.py \
  2>&1 | tee "$out/gpu_tests.txt" || status=1
timeout 420 python benchmarks/run.py --device gpu --write "$out/gpu_benchmark.md" \
  2>&1 | tee "$out/gpu_benchmark.txt" || status=1
exit $status
