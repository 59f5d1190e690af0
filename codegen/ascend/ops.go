// Package ascend prepares ONNX models for Huawei's ATC converter. Check
// reports everything in a model that ATC would reject. WriteWeights writes
// the weights as one file per tensor next to the model. ShapePlan maps
// graph inputs and sequence-length gears to ATC's --input_shape and
// --dynamic_dims, and KeepDTypeNodes lists the nodes to keep in float32.
//
// # Sources and what is unconfirmed
//
// No CANN toolkit and no Ascend NPU were available while this package was
// written. The operator list is the ONNX operator list of CANN 8.0.0 from
// Huawei's documentation (hiascend.com, canncommercial/800, "ONNX operator
// list"); the opset ranges come from the ONNX parser plugins of the
// open-source CANN 8.5 (github.com/hicann/ops-nn, ops-math, ops-cv), which
// register almost every operator for opsets 8 to 18. That CANN 8.0 registers
// the same ranges is unconfirmed.
package ascend

import (
	"strconv"
	"strings"
)

// MinOpset and MaxOpset bound the ai.onnx opset versions ATC's parser
// registers operators for. It looks up "ai.onnx::<opset>::<op>" by exact
// match with no fallback to a lower version, so a model that declares
// opset 19 fails on every node.
const (
	MinOpset = 8
	MaxOpset = 18
)

// opRange is the opset range an operator is registered for.
type opRange struct{ min, max int64 }

// exceptions are the operators whose registered range differs from
// MinOpset..MaxOpset, as the CANN 8.5 plugins register them.
var exceptions = map[string]opRange{
	"LayerNormalization": {17, 18},
	"Trilu":              {14, 18},
	"HardSwish":          {14, 18},
	"Resize":             {10, 18},
	"BitwiseAnd":         {18, 18},
	"BitwiseNot":         {18, 18},
	"BitwiseOr":          {18, 18},
	"BitwiseXor":         {18, 18},
}

// cann80Ops lists the standard ONNX operators in CANN 8.0.0's ONNX operator
// list, spelled as ONNX spells them (the list writes Argmax, Argmin, Cumsum
// and LogSoftMax). The list's Ascend-specific entries (AdaptiveAvgPool2D,
// AffineGrid, AscendAntiQuant, AscendQuant, BatchMultiClassNMS, Corr,
// DeformableConv2D, DynSeqOuter, EmbeddingBag, LSTMP, MovingSumWithSigmoid,
// RoiExtractor) are not standard ONNX operators and are left out.
var cann80Ops = strings.Fields(`
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool
BatchNormalization BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Cast
Ceil Celu Clip Compress Concat Constant ConstantOfShape Conv ConvTranspose
Cos Cosh CumSum DepthToSpace Det Div Dropout Einsum Elu Equal Erf Exp Expand
EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU Hardmax
HardSigmoid HardSwish Identity If InstanceNormalization IsInf IsNaN
LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization
LpPool LRN LSTM MatMul Max MaxPool MaxRoiPool MaxUnpool Mean
MeanVarianceNormalization Min Mod Mul Multinomial Neg NonMaxSuppression
NonZero Not OneHot Or Pad Pow RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMean ReduceMin ReduceProd ReduceSumSquare ReduceSum
ReduceMax Relu Reshape Resize ReverseSequence RoiAlign Round PRelu Scatter
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
Softmax SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh TfIdfVectorizer ThresholdedRelu Tile TopK Transpose
Trilu Unsqueeze Where Xor`)

// avoided lists operators that ATC registers but that mmadac's ascend
// target must not use, with the reason.
var avoided = map[string]string{
	"Einsum":  "ATC supports only 20 two-input Einsum equations; emit MatMul and Transpose instead",
	"NonZero": "the output shape depends on the data, which forces dynamic-shape execution and rules out gears",
}

// supportedRange returns the opset range ATC registers op for, and false
// when CANN 8.0's list does not contain it.
func supportedRange(op string) (opRange, bool) {
	if r, ok := exceptions[op]; ok {
		return r, true
	}
	for _, name := range cann80Ops {
		if name == op {
			return opRange{MinOpset, MaxOpset}, true
		}
	}
	return opRange{}, false
}

// Supported reports whether ATC's ONNX parser registers the ai.onnx operator
// op at the given opset version and mmadac allows it on the ascend target.
// When it does not, reason explains why.
func Supported(op string, opset int64) (ok bool, reason string) {
	r, listed := supportedRange(op)
	switch {
	case !listed:
		return false, "not in CANN 8.0's ONNX operator list, so ATC has no parser for it (error E16002)"
	case opset < r.min || opset > r.max:
		return false, "ATC registers " + op + " for opsets " + strconv.FormatInt(r.min, 10) + " to " + strconv.FormatInt(r.max, 10) + " only (error E16002)"
	}
	if why, bad := avoided[op]; bad {
		return false, why
	}
	return true, ""
}
