package engine

import (
	"errors"
	"fmt"
	"os"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/runtime/ort"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// ONNXModel runs an ONNX file made outside mmadac (such as the output of
// torch.onnx.export) on ONNX Runtime as a transformer step function. The
// file must have the int64 inputs input_ids and attention_mask, both
// [batch, seq], and the float32 output logits [batch, seq, vocab].
//
// It has no folded sampling head: every step copies the full logits into
// Go and the sampler computes the softmax on the host, as upstream's
// PyTorch loop does. The benchmarks use it to drive a naive export with
// the same Go sampler as mmadac's own graphs.
type ONNXModel struct {
	// Path is the ONNX file the session was opened on.
	Path string
	// Vocab is the vocabulary size; token ids outside [0, Vocab) are
	// rejected before a run. Zero skips that check.
	Vocab   int
	session *ort.Session
}

// OpenONNXModel opens an ONNX Runtime session on the file at path with the
// default options (one intra-op thread per available CPU, all graph
// optimisations on). vocab bounds the token ids that Forward accepts; pass
// the checkpoint config's Vocab(), or 0 to leave the ids unchecked.
func OpenONNXModel(path string, vocab int) (*ONNXModel, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ONNX model %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("ONNX model %s is a folder; pass the .onnx file", path)
	}
	if vocab < 0 {
		return nil, fmt.Errorf("vocabulary size %d is negative; pass the model's vocabulary size or 0", vocab)
	}
	s, err := ort.NewSession(path, []string{mmada.InputIDs, mmada.AttentionMask}, []string{mmada.Logits}, ort.DefaultOptions())
	if err != nil {
		return nil, fmt.Errorf("ONNX model %s: %w (the file needs inputs %s and %s and output %s)",
			path, err, mmada.InputIDs, mmada.AttentionMask, mmada.Logits)
	}
	return &ONNXModel{Path: path, Vocab: vocab, session: s}, nil
}

// Forward runs the model on ids and mask, i64 [batch, seq], and returns
// the logits f32 [batch, seq, vocab]. It has the signature of
// sampler.Forward.
func (m *ONNXModel) Forward(ids, mask *ir.Tensor) (*ir.Tensor, error) {
	if m.Vocab > 0 {
		vocab := int64(m.Vocab)
		for _, id := range ids.I64() {
			if id < 0 || id >= vocab {
				return nil, fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, vocab)
			}
		}
	}
	out, err := m.session.Run(map[string]*ir.Tensor{mmada.InputIDs: ids, mmada.AttentionMask: mask})
	if err != nil {
		return nil, err
	}
	logits := out[mmada.Logits]
	if logits.DType != ir.F32 || len(logits.Shape) != 3 {
		return nil, fmt.Errorf("ONNX model %s returned logits %v%v, want f32 [batch, seq, vocab]", m.Path, logits.DType, logits.Shape)
	}
	return logits, nil
}

// Head returns nil: the model has no folded sampling head, so the sampler
// reads full logits through Forward.
func (m *ONNXModel) Head() sampler.Head { return nil }

// LastStepBytes returns the bytes of the outputs that the last Forward
// copied from ONNX Runtime into Go.
func (m *ONNXModel) LastStepBytes() int64 { return m.session.LastOutputBytes() }

// Close releases the ONNX Runtime session.
func (m *ONNXModel) Close() error {
	if m.session == nil {
		return errors.New("ONNX model was not opened")
	}
	return m.session.Close()
}
