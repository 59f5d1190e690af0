package om

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildMatchesHandBuiltFile(t *testing.T) {
	got, err := Build(Builder{
		Name:            "tiny_llm",
		ModelType:       ModelTypeStandard,
		PlatformVersion: "Ascend910B3",
		Models: [][]Payload{{
			{ModelDef, []byte("model")},
			{WeightsData, []byte("wts")},
			{TBEKernels, []byte("kk")},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}

	// Build leaves the fields it has no input for at zero, so clear them in
	// the hand-built reference before comparing.
	want := validWide()
	want[12] = 0                          // checksum
	put32(want, 116, 0)                   // ops
	copy(want[120:152], make([]byte, 32)) // userdefineinfo
	put32(want, 152, 0)                   // om_ir_version
	want[180] = 0                         // platform_type
	want[192] = 0                         // need_check_os_cpu_info
	put32(want, 76, uint32(len(want)-256))

	if !bytes.Equal(got, want) {
		t.Errorf("Build output differs from the hand-built file\n got %x\nwant %x", got, want)
	}
}

func TestBuildRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		b    Builder
	}{
		{"wide single model", Builder{Name: "a", Models: [][]Payload{{{ModelDef, []byte("x")}}}}},
		{"tiny dynamic", Builder{Name: "b", TinyTable: true, Dynamic: true, Version: VersionLegacy,
			Models: [][]Payload{{{ModelDef, []byte("def")}, {WeightsData, nil}, {TaskInfo, []byte("t")}}}}},
		{"two models", Builder{Name: "c", Models: [][]Payload{
			{{ModelDef, []byte("m0")}},
			{{ModelDef, []byte("m1")}, {ModelInOutInfo, []byte("io")}},
		}}},
		{"flow model", Builder{Name: "d", ModelType: ModelTypeFlow, Models: [][]Payload{{{FlowModel, []byte("f")}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Build(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			info, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if info.Name != tc.b.Name || info.Dynamic != tc.b.Dynamic || info.TinyTable != tc.b.TinyTable {
				t.Errorf("name/dynamic/tiny = %q/%v/%v", info.Name, info.Dynamic, info.TinyTable)
			}
			if info.Models != len(tc.b.Models) {
				t.Errorf("Models = %d, want %d", info.Models, len(tc.b.Models))
			}
			idx := 0
			for m, parts := range tc.b.Models {
				for _, p := range parts {
					got := info.Partitions[idx]
					if got.Model != m || got.Type != p.Type || got.Size != uint64(len(p.Data)) {
						t.Errorf("partition %d = %+v, want model %d type %s size %d", idx, got, m, p.Type, len(p.Data))
					}
					if payload := data[got.FileOffset : got.FileOffset+got.Size]; !bytes.Equal(payload, p.Data) {
						t.Errorf("partition %d payload = %q, want %q", idx, payload, p.Data)
					}
					idx++
				}
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	onePartition := [][]Payload{{{ModelDef, []byte("x")}}}
	nine := make([]Payload, 9)
	for i := range nine {
		nine[i] = Payload{WeightsData, []byte{1}}
	}
	cases := []struct {
		name     string
		b        Builder
		fragment string
	}{
		{"name too long", Builder{Name: strings.Repeat("n", 32), Models: onePartition}, "at most 31"},
		{"platform version too long", Builder{PlatformVersion: strings.Repeat("v", 21), Models: onePartition}, "at most 20"},
		{"no models", Builder{}, "no models"},
		{"no partitions", Builder{Models: [][]Payload{{}}}, "0 partitions"},
		{"nine partitions", Builder{Models: [][]Payload{nine}}, "9 partitions"},
		{"empty payloads", Builder{Models: [][]Payload{{{ModelDef, nil}}}}, "empty"},
		{"tiny flow model", Builder{ModelType: ModelTypeFlow, TinyTable: true, Models: onePartition}, "flow models"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.fragment) {
				t.Errorf("Build error = %v, want one mentioning %q", err, tc.fragment)
			}
		})
	}
}

func TestWriteFileThenInspect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.om")
	if err := WriteFile(path, Builder{Name: "w", Models: [][]Payload{{{ModelDef, []byte("abc")}}}}); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "w" {
		t.Errorf("Name = %q, want w", info.Name)
	}

	err = WriteFile(filepath.Join(t.TempDir(), "no", "such", "dir.om"), Builder{Models: [][]Payload{{{ModelDef, []byte("a")}}}})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "write OM file") {
		t.Errorf("WriteFile into a missing directory = %v, want a write error", err)
	}
}
