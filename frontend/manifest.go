package frontend

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/mmadac/mmadac/ir"
)

// A tensor manifest lists the names and shapes of a full-size checkpoint
// without its data, so that tests and benchmarks can build a sparse stand-in
// (WriteSparseCheckpoint) for the 16 GB MMaDA-8B weights:
//
//	{
//	  "model": "MMaDA-8B (LLaDA-8B backbone)",
//	  "config": { ...config.json... },
//	  "tensors": [{"name": "model.transformer.wte.weight", "shape": [134656, 4096]}, ...],
//	  "parameter_count": 8082690048
//	}
//
// "config", "dtype" and "parameter_count" are optional.

// manifestFile is the JSON layout of a tensor manifest.
type manifestFile struct {
	Model          string          `json:"model"`
	Config         json.RawMessage `json:"config"`
	Tensors        []manifestEntry `json:"tensors"`
	ParameterCount *int64          `json:"parameter_count"`
}

// manifestEntry is one tensor of a manifest.
type manifestEntry struct {
	Name  string   `json:"name"`
	Shape *[]int64 `json:"shape"`
	DType string   `json:"dtype"`
}

// manifestDTypes maps the dtype names accepted in manifests, PyTorch's
// ("float32", optionally "torch.float32") and the safetensors names, to IR
// dtypes.
var manifestDTypes = map[string]ir.DType{
	"float32":  ir.F32,
	"float":    ir.F32,
	"float16":  ir.F16,
	"half":     ir.F16,
	"bfloat16": ir.BF16,
	"float64":  ir.F64,
	"double":   ir.F64,
	"int64":    ir.I64,
	"long":     ir.I64,
	"int32":    ir.I32,
	"int":      ir.I32,
	"bool":     ir.Bool,
}

// parseManifestDType resolves a manifest dtype name.
func parseManifestDType(name string) (ir.DType, bool) {
	if dt, ok := safetensorsDTypes[name]; ok {
		return dt, true
	}
	dt, ok := manifestDTypes[strings.TrimPrefix(name, "torch.")]
	return dt, ok
}

// LoadManifest reads a tensor manifest. It returns the raw "config" object
// (nil when absent) and one TensorInfo per tensor in file order, with Name,
// Shape and DType set; File, Offset and Size are zero. A tensor without a
// "dtype" gets ir.InvalidDType, for the caller to replace with its default
// (see ApplyDefaultDType). When "parameter_count" is present it must equal
// the sum of the element counts.
func LoadManifest(path string) (config []byte, infos []TensorInfo, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load manifest: %w", err)
	}
	var m manifestFile
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	if len(m.Tensors) == 0 {
		return nil, nil, fmt.Errorf("load manifest %s: no tensors listed", path)
	}

	seen := make(map[string]bool, len(m.Tensors))
	var params int64
	for i, e := range m.Tensors {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("load manifest %s: tensor %d (%q): %s", path, i, e.Name, fmt.Sprintf(format, args...))
		}
		if e.Name == "" {
			return nil, nil, bad("name is missing")
		}
		if seen[e.Name] {
			return nil, nil, bad("name appears twice")
		}
		seen[e.Name] = true
		if e.Shape == nil {
			return nil, nil, bad("shape is missing")
		}
		numel, err := checkedNumElements(*e.Shape)
		if err != nil {
			return nil, nil, bad("shape %v: %v", *e.Shape, err)
		}
		dt := ir.InvalidDType
		if e.DType != "" {
			var ok bool
			if dt, ok = parseManifestDType(e.DType); !ok {
				return nil, nil, bad("dtype %q is not one of float32, float16, bfloat16, float64, int64, int32, bool", e.DType)
			}
		}
		params += numel
		infos = append(infos, TensorInfo{Name: e.Name, DType: dt, Shape: *e.Shape})
	}
	if m.ParameterCount != nil && *m.ParameterCount != params {
		return nil, nil, fmt.Errorf("load manifest %s: parameter_count is %d but the tensors hold %d elements; the manifest is inconsistent",
			path, *m.ParameterCount, params)
	}
	if len(m.Config) > 0 && string(m.Config) != "null" {
		config = []byte(m.Config)
	}
	return config, infos, nil
}

// ApplyDefaultDType sets the dtype of every entry of infos that has none
// (ir.InvalidDType) to dt, in place.
func ApplyDefaultDType(infos []TensorInfo, dt ir.DType) {
	for i := range infos {
		if infos[i].DType == ir.InvalidDType {
			infos[i].DType = dt
		}
	}
}
