#!/usr/bin/env bash
# Regenerates codegen/onnx/onnxpb/onnx.pb.go from onnx.proto.
#
# Needs protoc (Debian: apt-get install -y protobuf-compiler). protoc-gen-go
# is built from the google.golang.org/protobuf version that go.mod requires,
# so the generated code always matches the runtime library it links against.
# The generated file is committed: building mmadac does not need protoc.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v protoc >/dev/null 2>&1; then
  echo "onnxpb.sh: protoc not found; install it with: apt-get install -y protobuf-compiler" >&2
  exit 1
fi

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go

protoc \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --proto_path=codegen/onnx/onnxpb \
  --go_out=codegen/onnx/onnxpb \
  --go_opt=paths=source_relative \
  onnx.proto
echo "onnxpb.sh: wrote codegen/onnx/onnxpb/onnx.pb.go" >&2
