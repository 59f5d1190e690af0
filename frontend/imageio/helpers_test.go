package imageio

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

// testArray is one tensor of a test safetensors file: U8 data in u8 or F32
// data in f32.
type testArray struct {
	shape []int
	u8    []uint8
	f32   []float32
}

// readTestArrays reads the U8 and F32 tensors of a safetensors file. The
// project's reader (frontend.ReadSafetensors) rejects U8, which the
// reference files use for images.
func readTestArrays(t *testing.T, path string) map[string]testArray {
	t.Helper()
	blob, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	headerLen := binary.LittleEndian.Uint64(blob)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(blob[8:8+headerLen], &header); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	data := blob[8+headerLen:]

	arrays := make(map[string]testArray)
	for name, raw := range header {
		if name == "__metadata__" {
			continue
		}
		var entry struct {
			DType       string `json:"dtype"`
			Shape       []int  `json:"shape"`
			DataOffsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &entry); err != nil {
			t.Fatalf("%s: tensor %s: %v", path, name, err)
		}
		bytes := data[entry.DataOffsets[0]:entry.DataOffsets[1]]
		array := testArray{shape: entry.Shape}
		switch entry.DType {
		case "U8":
			array.u8 = bytes
		case "F32":
			array.f32 = make([]float32, len(bytes)/4)
			for i := range array.f32 {
				array.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(bytes[4*i:]))
			}
		default:
			continue
		}
		arrays[name] = array
	}
	return arrays
}

// diffStats summarises the absolute differences between two byte slices of
// equal length, in levels of 1/255.
type diffStats struct {
	max      int
	mean     float64
	differed int // number of values that differ
}

func compareBytes(got, want []uint8) diffStats {
	var s diffStats
	total := 0
	for i := range got {
		d := int(got[i]) - int(want[i])
		if d < 0 {
			d = -d
		}
		if d != 0 {
			s.differed++
		}
		s.max = max(s.max, d)
		total += d
	}
	if len(got) > 0 {
		s.mean = float64(total) / float64(len(got))
	}
	return s
}

func (s diffStats) String() string {
	return fmt.Sprintf("max %d/255, mean %.4f/255, %d values differ", s.max, s.mean, s.differed)
}
