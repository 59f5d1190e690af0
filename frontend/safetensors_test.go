package frontend

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rawSafetensors assembles a safetensors file byte by byte: the 8-byte
// little-endian header length, the header text and the data section.
func rawSafetensors(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// writeRaw writes content to name inside a new temporary folder.
func writeRaw(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCorruptSafetensors(t *testing.T) {
	data16 := make([]byte, 16)
	cases := []struct {
		name    string
		content []byte
		tensor  string // tensor the error must name, "" for file-level errors
		reason  string // fragment the error must contain
	}{
		{
			name:    "shorter than 8 bytes",
			content: []byte{1, 2, 3},
			reason:  "shorter than the 8-byte header length",
		},
		{
			name:    "header length beyond file",
			content: append(binary.LittleEndian.AppendUint64(nil, 1000), `{"a":1}`...),
			reason:  "header length 1000 exceeds",
		},
		{
			name:    "header not JSON",
			content: rawSafetensors(`{"w": {"dtype": `, data16),
			reason:  "header is not a JSON object",
		},
		{
			name:    "header JSON array",
			content: rawSafetensors(`[1, 2]`, data16),
			reason:  "header is not a JSON object",
		},
		{
			name:    "offsets beyond data",
			content: rawSafetensors(`{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}`, data16),
			tensor:  "w",
			reason:  "beyond the data section of 16 bytes",
		},
		{
			name:    "begin after end",
			content: rawSafetensors(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[12,8]}}`, data16),
			tensor:  "w",
			reason:  "begin must be between 0 and end",
		},
		{
			name:    "negative begin",
			content: rawSafetensors(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, data16),
			tensor:  "w",
			reason:  "begin must be between 0 and end",
		},
		{
			name:    "size not shape times dtype",
			content: rawSafetensors(`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, data16),
			tensor:  "w",
			reason:  "span 12 bytes, but shape [2 2] of F32 needs 4 elements of 4 bytes",
		},
		{
			name: "overlapping tensors",
			content: rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},`+
				`"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data16),
			tensor: "b",
			reason: `overlap tensor "a"`,
		},
		{
			name:    "unsupported dtype",
			content: rawSafetensors(`{"w":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}`, data16),
			tensor:  "w",
			reason:  `dtype "F8_E4M3" is not supported`,
		},
		{
			name:    "missing dtype",
			content: rawSafetensors(`{"w":{"shape":[4],"data_offsets":[0,16]}}`, data16),
			tensor:  "w",
			reason:  "no dtype",
		},
		{
			name:    "missing shape",
			content: rawSafetensors(`{"w":{"dtype":"F32","data_offsets":[0,16]}}`, data16),
			tensor:  "w",
			reason:  "no shape",
		},
		{
			name:    "missing offsets",
			content: rawSafetensors(`{"w":{"dtype":"F32","shape":[4]}}`, data16),
			tensor:  "w",
			reason:  "no data_offsets",
		},
		{
			name:    "three offsets",
			content: rawSafetensors(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8,16]}}`, data16),
			tensor:  "w",
			reason:  "must have 2 entries",
		},
		{
			name:    "negative dimension",
			content: rawSafetensors(`{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}`, data16),
			tensor:  "w",
			reason:  "dimension -4 is negative",
		},
		{
			name:    "entry not an object",
			content: rawSafetensors(`{"w":[1,2,3]}`, data16),
			tensor:  "w",
			reason:  "header entry is not an object",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeRaw(t, "bad.safetensors", tc.content)
			for _, open := range []struct {
				name string
				run  func() error
			}{
				{"OpenCheckpoint", func() error {
					c, err := OpenCheckpoint(path)
					if err == nil {
						c.Close()
					}
					return err
				}},
				{"ReadSafetensors", func() error { _, err := ReadSafetensors(path); return err }},
			} {
				err := open.run()
				if err == nil {
					t.Fatalf("%s accepted a corrupt file", open.name)
				}
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("%s: error %q is not a *FormatError", open.name, err)
				}
				if fe.File != path {
					t.Errorf("%s: FormatError.File = %q, want %q", open.name, fe.File, path)
				}
				if fe.Tensor != tc.tensor {
					t.Errorf("%s: FormatError.Tensor = %q, want %q", open.name, fe.Tensor, tc.tensor)
				}
				msg := err.Error()
				if !strings.Contains(msg, path) {
					t.Errorf("%s: error %q does not name the file", open.name, msg)
				}
				if !strings.Contains(msg, tc.reason) {
					t.Errorf("%s: error %q does not contain %q", open.name, msg, tc.reason)
				}
			}
		})
	}
}

func TestHeaderAcceptsMetadataAndEmptyTensors(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},` +
		`"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},` +
		`"scalar":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}`
	data := binary.LittleEndian.AppendUint32(nil, 7)
	path := writeRaw(t, "ok.safetensors", rawSafetensors(header, data))

	got, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("read %d tensors, want 2 (metadata is not a tensor)", len(got))
	}
	if v := got["scalar"].I32(); len(v) != 1 || v[0] != 7 {
		t.Errorf("scalar = %v, want [7]", v)
	}
	if n := got["empty"].Len(); n != 0 {
		t.Errorf("empty tensor has %d elements", n)
	}
}

func TestHeaderAllowsGapsAndTrailingBytes(t *testing.T) {
	// Offsets need not be contiguous; only overlaps are errors.
	header := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`
	path := writeRaw(t, "gap.safetensors", rawSafetensors(header, make([]byte, 20)))
	c, err := OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, _ := c.Info("a")
	if want := int64(8 + len(header) + 8); info.Offset != want {
		t.Errorf("Offset = %d, want %d", info.Offset, want)
	}
}
