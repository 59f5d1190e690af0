#!/usr/bin/env bash
# Runs every test of mmadac on a fresh machine: installs what the tests
# need (scripts/setup.sh), then vets and tests all packages. The ONNX
# Runtime and ONNX checker tests fail instead of skipping when CI is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CI=${CI:-true}
go vet ./...
go test -count=1 ./...
# Regenerate the tokenizer reference results with Hugging Face's own
# tokenizers (npm) and compare them with the files the Go tests read.
node scripts/tokenizer-ref/gen.js --check

# The PyTorch peer of the benchmarks must reproduce upstream's golden
# logits and generations, or its timings compare against the wrong model.
bash bench/setup-peers.sh
/usr/bin/python3 bench/test_mmada_torch.py

# The browser test of `mmadac serve`: headless Chromium on loopback.
bash internal/serve/browsertest/run.sh
