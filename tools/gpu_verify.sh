#!/usr/bin/env bash
# The GPU verification behind docs/verified.md: `make test-gpu`'s two parts (the gpu-marked tests, then every
# solution notebook), with one timing and verdict per notebook. Writes into $OUT (or ./gpu-results) and packs the
# logs into results.tar.gz. Usage on a GPU machine: bash tools/gpu_verify.sh
set -uo pipefail
out=${OUT:-gpu-results}
logs="$out/logs"
mkdir -p "$logs"
py=${GPU_PYTHON:-python3}
export TRTLAB_STRICT_CHECKS=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
{ nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv; "$py" -m trtlab doctor; } \
  > "$logs/doctor.txt" 2>&1
"$py" - > "$logs/versions.txt" 2>&1 <<'PY'
import importlib.metadata as m, platform
print("python", platform.python_version())
for d in ["torch", "torchvision", "cupy-cuda13x", "cuda-bindings", "numpy", "onnx", "onnxruntime", "nvidia-modelopt",
          "onnxslim", "polygraphy", "tensorrt", "tensorrt-rtx-cu13", "nbval", "ipykernel", "nvidia-pytriton", "tritonclient"]:
    try:
        print(d, m.version(d))
    except m.PackageNotFoundError:
        print(d, "absent")
PY
start=$(date +%s)
"$py" -m pytest -p no:cacheprovider -o addopts="" -m gpu -ra -s tests/gpu > "$logs/gpu-tests.log" 2>&1
echo -e "gpu tests\t$?\t$(( $(date +%s) - start ))" > "$out/summary.tsv"
for nb in solutions/[0-9][0-9]_*.ipynb; do
  name=$(basename "$nb" .ipynb)
  start=$(date +%s)
  timeout "${NB_TIMEOUT:-600}" "$py" -m pytest -p no:cacheprovider -o addopts="" --nbval-lax --nbval-current-env \
    --nbval-cell-timeout=600 -ra "$nb" > "$logs/$name.log" 2>&1
  echo -e "$name\t$?\t$(( $(date +%s) - start ))" >> "$out/summary.tsv"
done
tar -czf "$out/results.tar.gz" -C "$out" logs
cat "$out/summary.tsv"
tail -n 3 "$logs"/*.log
