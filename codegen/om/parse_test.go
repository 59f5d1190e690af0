package om

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The helpers below write OM files byte by byte with literal offsets, so the
// tests do not trust the package's own layout constants.

func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// handHeader returns a 256-byte header for a body of bodyLen bytes. With wide
// set it stores the size in model_length (offset 184), otherwise in length
// (offset 76).
func handHeader(bodyLen int, wide bool) []byte {
	h := make([]byte, 256)
	copy(h[0:], "IMOD")
	put32(h, 4, 256)
	put32(h, 8, 0x20000000)
	h[12] = 0xAB // first checksum byte
	if wide {
		put64(h, 184, uint64(bodyLen))
	} else {
		put32(h, 76, uint32(bodyLen))
	}
	h[82] = 1 // standard model
	copy(h[84:], "tiny_llm")
	put32(h, 116, 7)
	copy(h[120:], "\x01\x02")
	put32(h, 152, 9)
	put32(h, 156, 1)
	copy(h[160:], "Ascend910B3")
	h[180] = 2
	h[192] = 1
	return h
}

type entry struct {
	typ          uint32
	offset, size uint64
}

// wideTable returns a table with 24-byte entries.
func wideTable(entries ...entry) []byte {
	t := make([]byte, 8+24*len(entries))
	put32(t, 0, uint32(len(entries)))
	for i, e := range entries {
		put32(t, 8+24*i, e.typ)
		put64(t, 8+24*i+8, e.offset)
		put64(t, 8+24*i+16, e.size)
	}
	return t
}

// tinyTable returns a table with 12-byte entries.
func tinyTable(entries ...entry) []byte {
	t := make([]byte, 4+12*len(entries))
	put32(t, 0, uint32(len(entries)))
	for i, e := range entries {
		put32(t, 4+12*i, e.typ)
		put32(t, 4+12*i+4, uint32(e.offset))
		put32(t, 4+12*i+8, uint32(e.size))
	}
	return t
}

// assemble joins a header for the given body with the body parts.
func assemble(wide bool, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(handHeader(len(body), wide), body...)
}

// validWide is a single-model file with three partitions and 24-byte entries.
func validWide() []byte {
	return assemble(true,
		wideTable(entry{0, 0, 5}, entry{1, 5, 3}, entry{3, 8, 2}),
		[]byte("model"), []byte("wts"), []byte("kk"))
}

func TestParseWideTable(t *testing.T) {
	data := validWide()
	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}

	if info.FileSize != int64(len(data)) {
		t.Errorf("FileSize = %d, want %d", info.FileSize, len(data))
	}
	if info.Magic != 0x444F4D49 || info.HeadSize != 256 || info.Version != 0x20000000 {
		t.Errorf("magic/headsize/version = %#x/%d/%#x", info.Magic, info.HeadSize, info.Version)
	}
	if !strings.HasPrefix(info.Checksum, "ab") {
		t.Errorf("Checksum = %q, want prefix ab", info.Checksum)
	}
	if info.ModelType != ModelTypeStandard || info.ModelTypeName != "standard" {
		t.Errorf("ModelType = %d %q", info.ModelType, info.ModelTypeName)
	}
	if info.Name != "tiny_llm" {
		t.Errorf("Name = %q", info.Name)
	}
	if info.Ops != 7 || info.OMIRVersion != 9 || info.ModelNum != 1 || info.PlatformType != 2 {
		t.Errorf("ops/om_ir_version/model_num/platform_type = %d/%d/%d/%d", info.Ops, info.OMIRVersion, info.ModelNum, info.PlatformType)
	}
	if info.UserDefineInfo != "0102" {
		t.Errorf("UserDefineInfo = %q, want 0102", info.UserDefineInfo)
	}
	if info.PlatformVersion != "Ascend910B3" {
		t.Errorf("PlatformVersion = %q", info.PlatformVersion)
	}
	if info.ModelLength != uint64(len(data)-256) || info.Length != 0 {
		t.Errorf("model_length/length = %d/%d", info.ModelLength, info.Length)
	}
	if info.NeedCheckOSCPUInfo != 1 || info.Dynamic || info.TinyTable || info.Models != 1 {
		t.Errorf("need_check/dynamic/tiny/models = %d/%v/%v/%d", info.NeedCheckOSCPUInfo, info.Dynamic, info.TinyTable, info.Models)
	}

	want := []Partition{
		{Model: 0, Type: ModelDef, TypeName: "MODEL_DEF", Offset: 0, Size: 5, FileOffset: 256 + 80},
		{Model: 0, Type: WeightsData, TypeName: "WEIGHTS_DATA", Offset: 5, Size: 3, FileOffset: 256 + 85},
		{Model: 0, Type: TBEKernels, TypeName: "TBE_KERNELS", Offset: 8, Size: 2, FileOffset: 256 + 88},
	}
	if len(info.Partitions) != len(want) {
		t.Fatalf("got %d partitions, want %d", len(info.Partitions), len(want))
	}
	for i := range want {
		if info.Partitions[i] != want[i] {
			t.Errorf("partition %d = %+v, want %+v", i, info.Partitions[i], want[i])
		}
	}
	if got := string(data[info.Partitions[1].FileOffset:][:3]); got != "wts" {
		t.Errorf("payload at FileOffset of partition 1 = %q, want wts", got)
	}
}

func TestParseTinyTable(t *testing.T) {
	data := assemble(false, tinyTable(entry{0, 0, 4}, entry{2, 4, 1}), []byte("defs"), []byte("t"))
	data[193] = 1 // is_unknow_model

	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !info.TinyTable {
		t.Error("TinyTable = false, want true for model_length 0")
	}
	if !info.Dynamic || info.IsUnknownModel != 1 {
		t.Errorf("Dynamic = %v, IsUnknownModel = %d", info.Dynamic, info.IsUnknownModel)
	}
	if info.Length != uint32(len(data)-256) {
		t.Errorf("Length = %d, want %d", info.Length, len(data)-256)
	}
	want := []Partition{
		{Type: ModelDef, TypeName: "MODEL_DEF", Offset: 0, Size: 4, FileOffset: 256 + 28},
		{Type: TaskInfo, TypeName: "TASK_INFO", Offset: 4, Size: 1, FileOffset: 256 + 32},
	}
	for i := range want {
		if info.Partitions[i] != want[i] {
			t.Errorf("partition %d = %+v, want %+v", i, info.Partitions[i], want[i])
		}
	}
}

func TestParseTwoModels(t *testing.T) {
	data := assemble(true,
		wideTable(entry{0, 0, 2}), []byte("m0"),
		wideTable(entry{0, 0, 3}, entry{26, 3, 1}), []byte("m1d"), []byte("c"))
	put32(data, 156, 2)

	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if info.Models != 2 || len(info.Partitions) != 3 {
		t.Fatalf("Models = %d, partitions = %d; want 2 and 3", info.Models, len(info.Partitions))
	}
	second := info.Partitions[1]
	if second.Model != 1 || second.Offset != 0 || second.FileOffset != 256+32+2+56 {
		t.Errorf("first partition of model 1 = %+v", second)
	}
	if info.Partitions[2].TypeName != "CUSTOM_OPS" {
		t.Errorf("TypeName = %q, want CUSTOM_OPS", info.Partitions[2].TypeName)
	}
}

func TestParseModelNumZeroReadsOneModel(t *testing.T) {
	data := validWide()
	put32(data, 156, 0)
	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if info.ModelNum != 0 || info.Models != 1 {
		t.Errorf("ModelNum = %d, Models = %d; want 0 and 1", info.ModelNum, info.Models)
	}
}

func TestParseUnknownPartitionType(t *testing.T) {
	data := assemble(true, wideTable(entry{17, 0, 1}), []byte("x"))
	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Partitions[0].TypeName; got != "UNKNOWN(17)" {
		t.Errorf("TypeName = %q, want UNKNOWN(17)", got)
	}
}

func TestParseFlowModelAllowsManyPartitions(t *testing.T) {
	entries := make([]entry, 9)
	payload := make([][]byte, 0, 10)
	for i := range entries {
		entries[i] = entry{7, uint64(i), 1}
		payload = append(payload, []byte{byte(i)})
	}
	data := assemble(true, append([][]byte{wideTable(entries...)}, payload...)...)
	data[82] = 3 // flow model

	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 9 {
		t.Errorf("got %d partitions, want 9", len(info.Partitions))
	}
}

// TestParseRejects covers every check. Each case corrupts one thing and names
// the field the error must report and a fragment of its text.
func TestParseRejects(t *testing.T) {
	cases := []struct {
		name     string
		data     func() []byte
		field    string
		fragment string
	}{
		{"empty file", func() []byte { return nil }, "file size", "0 bytes"},
		{"shorter than header", func() []byte { return validWide()[:100] }, "file size", "100 bytes"},
		{"bad magic", func() []byte { d := validWide(); copy(d, "PK\x03\x04"); return d }, "magic", "not an OM file"},
		{"headsize", func() []byte { d := validWide(); put32(d, 4, 128); return d }, "headsize", "128"},
		{"name without NUL", func() []byte { d := validWide(); copy(d[84:116], strings.Repeat("n", 32)); return d }, "name", "NUL"},
		{"model_length too small", func() []byte { d := validWide(); put64(d, 184, 10); return d }, "model_length", "10"},
		{"length mismatch", func() []byte {
			d := assemble(false, tinyTable(entry{0, 0, 1}), []byte("x"))
			put32(d, 76, 999)
			return d
		}, "length", "999"},
		{"truncated file", func() []byte { d := validWide(); return d[:len(d)-4] }, "model_length", "file size"},
		{"encrypted", func() []byte { d := validWide(); d[80] = 1; return d }, "is_encrypt", "encrypted"},
		{"zero partitions", func() []byte { return assemble(true, wideTable(), []byte("pad")) }, "model[0].partition table num", "0"},
		{"nine partitions", func() []byte {
			entries := make([]entry, 9)
			for i := range entries {
				entries[i] = entry{1, uint64(i), 1}
			}
			return assemble(true, wideTable(entries...), []byte("123456789"))
		}, "model[0].partition table num", "1 to 8"},
		{"table header cut off", func() []byte { return assemble(true, []byte{1, 0, 0, 0}) }, "model[0].partition table", "cut off"},
		{"table entries cut off", func() []byte { return assemble(true, wideTable(entry{0, 0, 1}, entry{1, 1, 1})[:20]) }, "model[0].partition table", "truncated"},
		{"overlapping offset", func() []byte {
			return assemble(true, wideTable(entry{0, 0, 4}, entry{1, 2, 2}), []byte("abcd"), []byte("ef"))
		}, "model[0].partition[1].offset", "overlaps"},
		{"gap before partition", func() []byte {
			return assemble(true, wideTable(entry{0, 0, 2}, entry{1, 3, 2}), []byte("abc"), []byte("de"))
		}, "model[0].partition[1].offset", "gap"},
		{"first offset not zero", func() []byte {
			return assemble(false, tinyTable(entry{0, 1, 2}), []byte("abc"))
		}, "model[0].partition[0].offset", "gap"},
		{"size past end", func() []byte {
			return assemble(true, wideTable(entry{0, 0, 2}, entry{1, 2, 50}), []byte("abcd"))
		}, "model[0].partition[1].size", "50"},
		{"bytes after last partition", func() []byte {
			return assemble(true, wideTable(entry{0, 0, 2}), []byte("ab"), []byte("extra"))
		}, "body", "5 bytes"},
		{"model_num larger than tables", func() []byte { d := validWide(); put32(d, 156, 2); return d }, "model[1].partition table", "model_num (2)"},
		{"all partitions empty", func() []byte {
			return assemble(true, wideTable(entry{0, 0, 0}))
		}, "model[0].partition sizes", "0 bytes"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data())
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error = %v, want a *FormatError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("Field = %q, want %q (error: %v)", fe.Field, tc.field, err)
			}
			if !strings.Contains(err.Error(), tc.fragment) {
				t.Errorf("error %q does not mention %q", err, tc.fragment)
			}
			if fe.Found == "" || fe.Expected == "" {
				t.Errorf("Found/Expected empty: %+v", fe)
			}
		})
	}
}

func TestInspectFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.om")
	if err := os.WriteFile(path, validWide(), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "tiny_llm" || len(info.Partitions) != 3 {
		t.Errorf("Name = %q, partitions = %d", info.Name, len(info.Partitions))
	}
}

func TestInspectErrorsNamePath(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.om")
	if err := os.WriteFile(bad, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := Inspect(bad)
	var fe *FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Inspect(short file) = %v, want a FormatError naming %s", err, bad)
	}

	_, err = Inspect(filepath.Join(dir, "missing.om"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Inspect(missing) = %v, want os.ErrNotExist", err)
	}

	_, err = Inspect(dir)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Inspect(directory) = %v, want a not-a-regular-file error", err)
	}
}

func TestInfoJSON(t *testing.T) {
	info, err := Parse(validWide())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"magic", "headsize", "name", "model_length", "is_unknow_model", "platform_version", "partitions"} {
		if _, ok := back[key]; !ok {
			t.Errorf("JSON has no %q key: %s", key, raw)
		}
	}
	parts := back["partitions"].([]any)
	if first := parts[0].(map[string]any); first["type_name"] != "MODEL_DEF" {
		t.Errorf("partitions[0].type_name = %v, want MODEL_DEF", first["type_name"])
	}
}

func TestFormatSummary(t *testing.T) {
	info, err := Parse(validWide())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := info.Format(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"model name", "tiny_llm",
		"0x20000000 (CANN 8.5 header)",
		"1 (standard)",
		"dynamic shape", "no (is_unknow_model=0)",
		"Ascend910B3",
		"1, 24-byte entries",
		"MODEL_DEF (0)", "WEIGHTS_DATA (1)", "TBE_KERNELS (3)",
		"file offset",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatQuotesOddName(t *testing.T) {
	data := validWide()
	copy(data[84:], "a b\x01\x00")
	info, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := info.Format(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"a b\x01"`) {
		t.Errorf("summary does not quote the name:\n%s", buf.String())
	}
}
