#!/usr/bin/env bash
# Regenerates codegen/bundle/fb/*.go from codegen/bundle/bundle.fbs.
#
# Needs flatc 2.0.8 (Debian 12: apt-get install -y flatbuffers-compiler),
# the version that github.com/google/flatbuffers v2.0.8+incompatible in
# go.mod matches. The generated files are committed, so building mmadac does
# not need flatc.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v flatc >/dev/null 2>&1; then
  echo "bundle.sh: flatc not found; install it with: apt-get install -y flatbuffers-compiler" >&2
  exit 1
fi
version=$(flatc --version | awk '{print $3}')
if [ "$version" != "2.0.8" ]; then
  echo "bundle.sh: flatc $version found, but go.mod pins the Go runtime of flatbuffers 2.0.8; install flatc 2.0.8" >&2
  exit 1
fi

rm -rf codegen/bundle/fb
flatc --go --gen-object-api -o codegen/bundle codegen/bundle/bundle.fbs
gofmt -w codegen/bundle/fb
echo "bundle.sh: wrote codegen/bundle/fb" >&2
