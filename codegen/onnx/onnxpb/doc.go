// Package onnxpb holds the Go types of the ONNX protobuf messages that
// mmadac writes and reads: ModelProto, GraphProto, NodeProto,
// AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
// OperatorSetIdProto and StringStringEntryProto.
//
// # Why an own schema
//
// The Go module github.com/onnx/onnx-go is not served by the Go module
// proxy, and github.com/advancedclimatesystems/gonnx/onnx pulls in gorgonia,
// arrow and about a dozen further modules for a few generated types. The
// ONNX file format is plain protobuf, so this package generates the types
// from onnx.proto, a schema written for mmadac that contains only the
// messages above. Its field numbers and enum values are those of the
// published onnx/onnx.proto of ONNX 1.x, which is all that the wire format
// depends on; TestSchemaMatchesOfficial compares them with the descriptors
// of the installed onnx Python package.
//
// The schema is proto2, as the official one is, so optional scalars keep
// presence: an unset field reads back as unset, not as zero. Fields and
// messages that the schema leaves out (training info, functions, sparse
// tensors, non-tensor types) survive a read and re-write as unknown fields.
//
// # Regenerating
//
// onnx.pb.go is generated and committed, so building mmadac needs no
// protoc. After editing onnx.proto run
//
//	bash internal/gen/onnxpb.sh
//
// which needs protoc (Debian package protobuf-compiler) and builds
// protoc-gen-go at the google.golang.org/protobuf version in go.mod.
//
// # Checking output
//
// scripts/onnx_check.py runs onnx.checker.check_model with full_check=True
// on a file; the tests of this package use it on the models they marshal.
package onnxpb

//go:generate bash ../../../internal/gen/onnxpb.sh
