# trtlab, in two commands:
#   make lab    set up .venv (pinned versions), copy the labs to my-labs/ (your copy) and open JupyterLab there
#   make test   set up .venv with the test extras and run the whole test suite (unit tests + every solution notebook)
# Other targets: make labs (regenerate labs/ and the Chinese labs/zh_CN/ from solutions/), make doctor, make test-gpu.
# make lab LAB_LANG=zh_CN opens the Simplified Chinese labs (README.zh-CN.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
# nvidia-pytriton (it bundles a CPU build of the Triton server) is installed without its declared dependencies: its
# metadata pins numpy<2, which the course's numpy 2 (needed by CuPy 14) excludes. The server's Python-backend stub is
# compiled against NumPy 1, so `trtlab.serve prepare` gives the stub a small NumPy 1.26 environment of its own, and
# copies perf_analyzer out of the tritonclient 2.51 wheel (the only wheel whose binary runs on glibc 2.36).
NODEPS := $(shell grep -E '^(nvidia-pytriton)==' $(CONSTRAINTS))
JUPYTER_PORT ?= 8888
# make lab serves the learner's copy LAB_DIR, never labs/ (generated, compared by the tests); LAB_ARGS go to
# JupyterLab as they are, e.g. make lab LAB_ARGS="--no-browser --ip=0.0.0.0".
# make lab LAB_LANG=zh_CN: the Simplified Chinese labs (generated from the same solutions + i18n/zh_CN/ catalogs) in
# my-labs/zh_CN, with checks, hints and the doctor in Chinese. (Not LANG: that is the locale variable.)
LAB_LANG ?=
LAB_DIR ?= my-labs$(if $(LAB_LANG),/$(LAB_LANG))
LAB_ARGS ?=
# JupyterLab refuses to start as root (containers, cloud VMs) without --allow-root: passed only when uid is 0.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_ENV := $(if $(LAB_LANG),TRTLAB_LANG=$(LAB_LANG))

.PHONY: setup lab test test-gpu labs doctor system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.course: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(PIP) install -q -c $(CONSTRAINTS) -e .
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps $(NODEPS)
	$(BIN)/python -m trtlab.serve prepare --perf-analyzer
	touch $@

# tensorrt-stubs go into a folder of their own, never into the environment: their .pyi-only tensorrt/ package would
# make `import tensorrt` succeed on machines without TensorRT. tests/test_typing.py type-checks against them.
STUBS := $(shell grep -E '^tensorrt-stubs==' $(CONSTRAINTS))
$(VENV)/.test: $(VENV)/.course
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[test]'
	$(PIP) install -q --no-deps --target build/tensorrt-stubs $(STUBS)
	touch $@

setup: $(VENV)/.course

lab: setup
	$(LAB_ENV) $(BIN)/python -m trtlab doctor || true
	$(BIN)/python -m trtlab.course build-labs --out "$(LAB_DIR)" --keep-edited $(if $(LAB_LANG),--lang $(LAB_LANG))
	@$(if $(ALLOW_ROOT),echo "make lab: running as root (uid 0): passing --allow-root to JupyterLab",true)
	$(LAB_ENV) $(BIN)/jupyter lab --ServerApp.root_dir="$(LAB_DIR)" --port=$(JUPYTER_PORT) $(ALLOW_ROOT) $(LAB_ARGS)

system-deps:
	bash tools/system-deps.sh

test: $(VENV)/.test system-deps
	$(BIN)/python -m pytest

# On a GPU machine: the GPU test suite, then every solution notebook (uses the current python3, whose packages
# must already be there; see docs/verified.md for how it was run on an H100).
GPU_PYTHON ?= python3
test-gpu:
	$(GPU_PYTHON) -m pytest -p no:cacheprovider -o addopts="" -m gpu -ra tests/gpu
	$(GPU_PYTHON) -m pytest -p no:cacheprovider -o addopts="" --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=900 -ra solutions

labs: setup
	$(BIN)/python -m trtlab.course build-labs --instructor
	$(BIN)/python -m trtlab.course build-labs --lang zh_CN --instructor

doctor: setup
	$(BIN)/python -m trtlab doctor

clean:
	rm -rf $(VENV) build data/cache data/artifacts
