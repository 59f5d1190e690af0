package onnx

import (
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
	"github.com/mmadac/mmadac/ir"
)

// WeightsPerTensor refers each parameter to its own file next to the model
// file, with a location and a length but no offset entry. Huawei's ATC
// resolves locations relative to the .onnx file, and older releases of its
// ONNX parser multiplied the offset by 4096, so one file per tensor with no
// offset is the layout that every release reads the same way. Emit only
// writes the references: the caller writes the files (see PerTensorFile for
// their names), for example with codegen/ascend.WriteWeights.
const WeightsPerTensor WeightMode = "per-tensor"

// PerTensorFile returns the file name that WeightsPerTensor uses for a
// parameter: the name with every character outside [A-Za-z0-9._-] replaced
// by "_", and ".bin" appended. Checkpoint tensor names are dotted paths
// ("model.transformer.blocks.0.q_proj.weight"), so they map one to one.
func PerTensorFile(param string) string {
	var b strings.Builder
	for _, r := range param {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + ".bin"
}

// perTensorRef marks t as stored in PerTensorFile(p.Name) next to the model.
func perTensorRef(p *ir.Value, t *onnxpb.TensorProto) {
	size := p.Type.Shape.NumElements() * int64(p.Type.DType.Size())
	t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	t.ExternalData = []*onnxpb.StringStringEntryProto{
		{Key: proto.String(onnxpb.ExternalLocation), Value: proto.String(PerTensorFile(p.Name))},
		{Key: proto.String(onnxpb.ExternalLength), Value: proto.String(strconv.FormatInt(size, 10))},
	}
}
