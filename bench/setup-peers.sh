#!/usr/bin/env bash
# Installs the Debian packages that the benchmark peers in bench/ need:
# PyTorch 1.13 (python3-torch, runs under /usr/bin/python3), numpy, the ONNX
# checker (python3-onnx), and the pthread build of OpenBLAS. Debian's torch
# calls the system libblas.so.3. Without libopenblas0-pthread that is the
# unoptimized reference BLAS, which would make the PyTorch peer look slower
# than it is.
set -euo pipefail

packages=(python3-torch python3-numpy libopenblas0-pthread python3-onnx)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-peers: all packages present: ${packages[*]}" >&2
  exit 0
fi

echo "setup-peers: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
