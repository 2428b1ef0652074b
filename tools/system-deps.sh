#!/usr/bin/env bash
# System packages the test suite needs beyond Python: Chromium, for the browser test (a real JupyterLab, driven
# by Playwright with the system browser — Playwright's own browser download is not used), and a CJK font, so the
# screenshots of the Chinese edition show characters rather than empty boxes (the assertions read the page's text).
set -euo pipefail
have_browser() { [ -n "${TRTLAB_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; }
have_cjk_font() { ! command -v fc-list >/dev/null 2>&1 || [ -n "$(fc-list :lang=zh 2>/dev/null | head -1)" ]; }
if have_browser && have_cjk_font; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  packages=()
  have_browser || packages+=(chromium fonts-noto-color-emoji)
  have_cjk_font || packages+=(fonts-wqy-microhei)
  echo "installing for the browser test: apt-get install ${packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
  exit 0
fi
have_browser || { echo "The browser test needs Chromium: install your system's chromium package, or point" \
  "TRTLAB_CHROMIUM at a Chromium/Chrome binary, then re-run make test." >&2; exit 1; }
echo "note: no CJK font found (fc-list :lang=zh); the Chinese edition's screenshots will show boxes" >&2
