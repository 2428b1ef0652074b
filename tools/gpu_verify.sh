#!/usr/bin/env bash
# The GPU verification behind docs/verified.md: the gpu-marked tests and every solution notebook on a GPU machine,
# with strict exercise checks, one verdict and wall time per part. Run it from the repository root.
#
#   bash tools/gpu_verify.sh                       # everything: GPU tests, then notebooks 00 ... 06
#   bash tools/gpu_verify.sh tests/gpu/test_runtime_gpu.py 03 05   # only these parts (test files/dirs, notebook numbers)
#
# Packages the machine lacks come from tools/gpu_carry.sh (installed under /tmp/site, which is put first on
# PYTHONPATH here). Results go to $OUT (or ./gpu-results): summary.tsv (part, exit code, seconds), the logs packed in one
# logs-*.tar.gz, doctor.txt and versions.txt. tools/verified_md.py turns the collected results into docs/verified.md.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
logs=$(mktemp -d)  # logs travel back packed: the device tool returns at most 8 files
mkdir -p "$out"
py=${GPU_PYTHON:-python3}
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
export TRTLAB_STRICT_CHECKS=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
# Offline machine: pip (the Triton stub's NumPy 1.26 environment) installs from the carried wheelhouse only.
export PIP_NO_INDEX=1 PIP_FIND_LINKS=/tmp/trtlab-wheelhouse
# Triton's Python-backend stub runs with its own environment (no PYTHONPATH): let it find the course and the
# carried packages through a .pth file in the interpreter's site-packages.
site_packages=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
printf '%s\n/tmp/site\n' "$PWD" > "$site_packages/zz-trtlab-gpu-verify.pth" 2>/dev/null || true
if "$py" -c "import ipykernel" 2>/dev/null; then
  "$py" -m ipykernel install --user --name python3 >/dev/null 2>&1
fi
if [ ! -s "$out/doctor.txt" ]; then
  { nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv; date -u +%F;
    "$py" -m trtlab doctor; } > "$out/doctor.txt" 2>&1
  "$py" - > "$out/versions.txt" 2>&1 <<'PY'
import importlib.metadata as m, platform
print("python", platform.python_version())
for d in ["torch", "torchvision", "cupy-cuda13x", "cuda-bindings", "numpy", "onnx", "onnxruntime", "nvidia-modelopt",
          "onnxslim", "polygraphy", "tensorrt", "tensorrt_rtx_cu13_bindings", "cvcuda-cu13", "nbval", "ipykernel",
          "nvidia-pytriton", "tritonclient"]:
    try:
        print(d, m.version(d))
    except m.PackageNotFoundError:
        print(d, "absent")
PY
fi

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(tests/gpu 00 01 02 03 04 05 06)
for part in "${parts[@]}"; do
  start=$(date +%s)
  if [[ $part =~ ^[0-9][0-9]$ ]]; then
    nb=$(ls solutions/"$part"_*.ipynb)
    name=$(basename "$nb" .ipynb)
    timeout "${NB_TIMEOUT:-580}" "$py" -m pytest -p no:cacheprovider -o addopts="" --nbval-lax --nbval-current-env \
      --nbval-cell-timeout=570 -ra "$nb" > "$logs/$name.log" 2>&1
  else
    name=$(basename "$part" .py)
    timeout "${TEST_TIMEOUT:-580}" "$py" -m pytest -p no:cacheprovider -o addopts="" -m gpu -ra -s "$part" \
      > "$logs/$name.log" 2>&1
  fi
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - start ))" >> "$out/summary.tsv"
  printf '%-28s exit %s  %4s s   %s\n' "$name" "$rc" "$(( $(date +%s) - start ))" "$(tail -n 1 "$logs/$name.log")"
done
tar -czf "$out/logs-$(date +%H%M%S).tar.gz" -C "$logs" .
