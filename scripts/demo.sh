#!/usr/bin/env bash
# The main job on the small checkpoint in testdata: install what is
# needed, build the mmadac binary, compile the checkpoint into a bundle and
# generate text from it with the block-diffusion sampler.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
go build -o mmadac ./cmd/mmadac
./mmadac build --model testdata/upstream-tiny/mmada --out out/tiny
./mmadac run text --model out/tiny --prompt-ids 115,3,109,172,167,35,225,148,154,37,29,26 \
  --gen-length 16 --steps 16 --block-length 16 --json
