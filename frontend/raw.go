package frontend

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
)

// ReadRawTensor returns the safetensors dtype name, shape and raw bytes of
// one tensor of a small file, whatever its dtype. It serves tensors the IR
// has no type for, such as the U8 reference images of the golden vectors.
func ReadRawTensor(path, name string) (dtype string, shape []int64, data []byte, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", nil, nil, err
	}
	if len(raw) < 8 {
		return "", nil, nil, &FormatError{File: path, Reason: "file is shorter than the 8-byte header length"}
	}
	n := binary.LittleEndian.Uint64(raw)
	if n > uint64(len(raw)-8) {
		return "", nil, nil, &FormatError{File: path, Reason: fmt.Sprintf("header length %d exceeds the file", n)}
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		return "", nil, nil, &FormatError{File: path, Reason: "header is not a JSON object: " + err.Error()}
	}
	entry, ok := header[name]
	if !ok {
		return "", nil, nil, fmt.Errorf("%s has no tensor %s", path, name)
	}
	var e struct {
		DType   string   `json:"dtype"`
		Shape   []int64  `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		return "", nil, nil, &FormatError{File: path, Tensor: name, Reason: err.Error()}
	}
	start := 8 + int64(n)
	if e.Offsets[0] < 0 || e.Offsets[0] > e.Offsets[1] || start+e.Offsets[1] > int64(len(raw)) {
		return "", nil, nil, &FormatError{File: path, Tensor: name, Reason: fmt.Sprintf("data_offsets %v are outside the file", e.Offsets)}
	}
	return e.DType, e.Shape, raw[start+e.Offsets[0] : start+e.Offsets[1]], nil
}
