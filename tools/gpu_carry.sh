#!/usr/bin/env bash
# Bring the packages the GPU machine lacks (TensorRT-RTX, CV-CUDA, the Triton server, the Jupyter stack, ModelOpt,
# Polygraphy, ...) onto it, although one call of the device tool carries at most 64 MiB: wheels are split into parts
# that travel in consecutive calls (the machine keeps /tmp while it stays warm between calls), then reassembled,
# checked against their sha256 and installed with pip --target.
#
#   here:         bash tools/gpu_carry.sh prepare          # downloads wheels, writes .whl/s1 ... .whl/sN (git-ignored)
#   GPU machine:  bash tools/gpu_carry.sh receive           # in every call that carries one .whl/sK folder
#                 export PYTHONPATH=/tmp/site:$PWD          # once every part arrived, the wheels are installed there
#
# Each stage folder holds parts and whole wheels of at most STAGE_MB (default 56 MB) together, so that it fits one
# call with the working tree (about 4 MB today; 64 MiB in all). `receive` installs each wheel as soon as all its
# parts are in /tmp/trtlab-parts.
set -euo pipefail
cmd=${1:?usage: gpu_carry.sh prepare|receive}
root=$(cd "$(dirname "$0")/.." && pwd)
whl="$root/.whl"
parts=/tmp/trtlab-parts
site=/tmp/site
wheelhouse=/tmp/trtlab-wheelhouse  # wheels pip may install later offline (PIP_FIND_LINKS), e.g. the stub's NumPy

# Python 3.12 wheels for the GPU machine's image (manylinux x86-64). Versions follow requirements/constraints.txt.
pin() {  # NAME==VERSION from the constraints file ('-' and '_' alike), or stop
  grep -iE "^${1//[-_]/[-_]}==" "$root/requirements/constraints.txt" | head -1 | grep . \
    || { echo "gpu_carry.sh: $1 is not pinned in requirements/constraints.txt" >&2; kill $$; }
}
wheels=(
  "$(pin tensorrt_rtx_cu13_libs)" "$(pin tensorrt_rtx_cu13_bindings)"
  "$(pin nvidia-modelopt)" "$(pin polygraphy)" "$(pin onnxslim)" "$(pin onnxruntime_extensions)" "$(pin lief)"
  "$(pin prometheus_client)" "$(pin nvidia-pytriton)" "$(pin tritonclient)" "$(pin gevent)" "$(pin geventhttpclient)"
  "$(pin greenlet)" "$(pin zope.event)" "$(pin zope.interface)"
  "$(pin brotli)" python-rapidjson numpy==1.26.4 cvcuda-cu13==0.19.0
  "$(pin onnx_graphsurgeon)"  # imported by ModelOpt's ONNX tools (AutoCast, INT8 quantization)
)
jupyter=(nbval nbclient nbformat jupyter_client jupyter_core ipykernel ipython traitlets tornado pyzmq comm
  matplotlib-inline prompt_toolkit jedi parso stack_data executing asttokens pure_eval decorator pexpect
  ptyprocess wcwidth fastjsonschema jsonschema jsonschema-specifications referencing rpds-py attrs platformdirs
  nest_asyncio ipywidgets widgetsnbextension jupyterlab_widgets debugpy)

prepare() {
  local dl="$whl/download" stage_mb=${STAGE_MB:-56}
  rm -rf "$whl"; mkdir -p "$dl"
  local plat=(--platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
              --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
              --platform manylinux1_x86_64 --platform any)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" \
    -d "$dl" "${wheels[@]}" "${jupyter[@]}"
  # tensorrt-rtx-cu13 itself is published as a source distribution (pure Python): build its wheel here.
  python3 -m pip wheel -q --no-deps "$(pin tensorrt_rtx_cu13)" -w "$dl"
  # Split the large wheels into parts; small ones travel whole. Then fill stages greedily, largest first.
  mkdir -p "$whl/items"
  (cd "$dl" && sha256sum *.whl) > "$whl/items/SHA256SUMS"
  for f in "$dl"/*.whl; do
    if [ "$(stat -c %s "$f")" -gt $(( 45 * 1000 * 1000 )) ]; then
      split -b 44M -d "$f" "$whl/items/$(basename "$f").part"
      echo "$(basename "$f") $(ls "$whl/items/$(basename "$f")".part* | wc -l)" >> "$whl/items/PARTS"
    else
      cp "$f" "$whl/items/"
    fi
  done
  python3 - "$whl" "$stage_mb" <<'PY'
import pathlib, shutil, sys
root, limit = pathlib.Path(sys.argv[1]), float(sys.argv[2]) * 1e6
manifests = ("SHA256SUMS", "PARTS")
# What the verification needs first travels first: TensorRT-RTX, the small tools, the Jupyter stack, then CV-CUDA
# (Lab 04), then the Triton server (Lab 06). Each item goes into the first stage with room for it.
groups = (("tensorrt_rtx",), ("nvidia_modelopt", "polygraphy", "onnxslim", "onnxruntime_extensions", "lief",
                             "onnx_graphsurgeon"),
          (), ("cvcuda",), ("nvidia_pytriton", "numpy", "tritonclient", "gevent", "greenlet", "zope", "brotli",
                            "python_rapidjson", "prometheus_client"))
JUPYTER = 2  # everything not named above: the Jupyter stack
def rank(p: pathlib.Path) -> tuple[int, str]:
    group = next((i for i, names in enumerate(groups) if p.name.startswith(names)), JUPYTER) if p.name else JUPYTER
    return group, p.name
items = sorted((p for p in (root / "items").iterdir() if p.name not in manifests), key=rank)
stages: list[list[pathlib.Path]] = []
for item in items:
    size = item.stat().st_size
    home = next((s for s in stages if sum(p.stat().st_size for p in s) + size <= limit), None)
    if home is None:
        stages.append(home := [])
    home.append(item)
for k, stage in enumerate(stages, 1):
    folder = root / f"s{k}"
    folder.mkdir()
    for manifest in manifests:
        shutil.copy(root / "items" / manifest, folder)
    for item in stage:
        shutil.move(str(item), folder / item.name)
    print(f"s{k}: {sum(p.stat().st_size for p in folder.iterdir()) / 1e6:.1f} MB, {len(stage)} items")
PY
  rm -rf "$whl/download" "$whl/items"
  echo "carry .whl/s1, .whl/s2, ... one per device call (consecutive calls, while the machine stays warm)"
}

receive() {
  shopt -s nullglob
  mkdir -p "$parts" "$site"
  for stage in "$whl"/s*/; do
    [ -d "$stage" ] || continue
    cp "$stage"/* "$parts"/
  done
  cd "$parts"
  local pending=0
  while read -r sum name; do
    [ -f "installed-$name" ] && continue
    local want have
    want=$(awk -v n="$name" '$1 == n {print $2}' PARTS)
    if [ -n "$want" ] && [ ! -f "$name" ]; then
      local present=("$name".part*)  # nullglob: none here yet gives an empty list
      have=${#present[@]}
      if [ "$have" -lt "$want" ]; then
        pending=$((pending + 1)); echo "waiting for parts of $name: $have of $want here"; continue
      fi
      cat "$name".part* > "$name"
    fi
    if [ ! -f "$name" ]; then pending=$((pending + 1)); continue; fi
    echo "$sum  $name" | sha256sum -c --quiet - || { echo "sha256 mismatch: $name" >&2; rm -f "$name"; exit 1; }
    case "$name" in  # NumPy 1.x is for the Triton stub's own environment, never for /tmp/site (NumPy 2 there)
      numpy-1.*) mkdir -p "$wheelhouse"; mv "$name" "$wheelhouse/"; touch "installed-$name"; continue ;;
    esac
    python3 -m pip install -q --root-user-action=ignore --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$site" "$name" \
      2>&1 | grep -v "WARNING: Target directory" || true
    touch "installed-$name"; rm -f "$name" "$name".part*
  done < SHA256SUMS
  echo "installed into $site: $(ls installed-* 2>/dev/null | wc -l) wheels; still waiting for $pending"
}

"$cmd"
