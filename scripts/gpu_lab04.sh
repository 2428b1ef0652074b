#!/usr/bin/env bash
# Lab 04 on a GPU machine in one go: the gpu test suite of trtlab.kernels, the checker tests (which take the GPU path
# there), the kernel benchmarks, the Lab 04 notebook (nbval) and an Nsight Compute summary. Logs under ${OUT:-results}.
#   WHEELS=.whl-c bash scripts/gpu_lab04.sh   (wheels the GPU machine lacks, in $WHEELS, are installed first)
# The wheels (Python 3.12, made here): ../shared/tools/gpu-wheels.sh .whl-c scikit-image==0.26.0 lazy_loader \
#   imageio tifffile matplotlib contourpy cycler fonttools kiwisolver pyparsing python-dateutil six
# (scikit-image for the sample photos, matplotlib for the notebook, the Jupyter stack for nbval), about 47 MB;
# keep the folder out of git (.git/info/exclude) and name it in the device tool's `carry`.
#   bash scripts/gpu_lab04.sh pipeline   (issue 15 only, < 5 min: the plan/graph/pipeline/CV-CUDA GPU tests, then
#   scripts/bench_kernels.py --pipeline, whose summary table is printed last; CV-CUDA via PYTHONPATH, e.g. /tmp/site)
set -uo pipefail
OUT=${OUT:-results}; mkdir -p "$OUT"
if [ -n "${WHEELS:-}" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 TRTLAB_STRICT_CHECKS=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
python3 -c "import trtlab; print(trtlab.env.capabilities().summary())" | tee -a "$OUT/gpu.txt"
if [ "${1:-}" = "pipeline" ]; then
  python3 -c "from trtlab.kernels import cvcuda_ops; print('CV-CUDA', cvcuda_ops.version())" | tee -a "$OUT/gpu.txt"
  timeout 120 python3 -m pytest -p no:cacheprovider -o addopts="" -m gpu -ra -s tests/gpu/test_pipeline_gpu.py \
    2>&1 | tee "$OUT/pipeline_tests.log" | grep -E "graph|per call|µs|grey levels|tolerance|stand-in|PASS|FAIL|Error|passed|failed|skipped" | tail -60
  timeout 170 python3 scripts/bench_kernels.py --pipeline --out "$OUT" 2>&1 | tee "$OUT/bench_pipeline.log" | tail -45
  exit 0
fi
timeout 300 python3 -m pytest -p no:cacheprovider -o addopts="" -m gpu -ra -s tests/gpu/test_kernels_gpu.py \
  2>&1 | tee "$OUT/gpu_tests.log" | grep -E "max abs error|roofline|copy|fused|PASS|FAIL|Error|passed|failed" | tail -80
# the checkers' GPU path (the learner's CUDA C inside the real kernel, the learner's launch configuration)
timeout 120 python3 -m pytest -p no:cacheprovider -o addopts="" -ra -q tests/check/test_lab04.py \
  2>&1 | tee "$OUT/checker_tests_on_gpu.log" | tail -8
timeout 240 python3 scripts/bench_kernels.py --out "$OUT" 2>&1 | tee "$OUT/bench.log" | tail -60
# The Lab 04 solution notebook, as CI runs it but on the GPU (needs the Jupyter stack: tools/gpu-wheels.sh).
if python3 -c "import nbval, ipykernel" 2>/dev/null; then
  python3 -m ipykernel install --user --name python3 >/dev/null 2>&1
  timeout 420 python3 -m pytest -p no:cacheprovider -o addopts="" -p nbval --nbval-lax --nbval-current-env \
    --nbval-cell-timeout=400 -ra solutions/04_cuda_kernels.ipynb 2>&1 | tee "$OUT/notebook.log" | tail -40
fi
# Nsight Compute's speed-of-light summary of the pre-processing kernels (when ncu is there)
if [ "${NCU:-1}" = 1 ] && command -v ncu >/dev/null; then  # NCU=0 skips it
  timeout 150 ncu --section SpeedOfLight --kernel-name regex:preprocess --launch-skip 1 --launch-count 11 \
    python3 scripts/profile_lab04.py > "$OUT/ncu.txt" 2>&1
  grep -E "preprocess|Duration|Memory Throughput|DRAM Throughput|Compute \(SM\)" "$OUT/ncu.txt" | head -60
fi
