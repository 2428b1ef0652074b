#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Chromium, for the browser test (a real JupyterLab, driven
# by Playwright with the system browser — Playwright's own browser download is not used).
set -euo pipefail
if [ -n "${TRTLAB_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Chromium for the browser test (apt-get install chromium)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
  exit 0
fi
echo "The browser test needs Chromium: install your system's chromium package, or point TRTLAB_CHROMIUM at a" \
     "Chromium/Chrome binary, then re-run make test." >&2
exit 1
