package frontend

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

const (
	mmada8BManifest   = "testdata/mmada-8b-tensors.json"
	magvitV2Manifest  = "testdata/magvitv2-tensors.json"
	mmada8BTensors    = 291
	mmada8BParameters = 8_082_690_048
)

func TestSparse8BCheckpoint(t *testing.T) {
	config, infos, err := LoadManifest(mmada8BManifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != mmada8BTensors {
		t.Fatalf("manifest lists %d tensors, want %d", len(infos), mmada8BTensors)
	}
	ApplyDefaultDType(infos, ir.BF16)

	dir := t.TempDir()
	if err := WriteSparseCheckpoint(dir, config, infos, 4); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var disk, length int64
	var shards []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		disk += diskBytes(t, path)
		st, _ := os.Stat(path)
		length += st.Size()
		if strings.HasSuffix(e.Name(), ".safetensors") {
			shards = append(shards, e.Name())
		}
	}
	t.Logf("sparse MMaDA-8B checkpoint: %d bytes long, %d bytes on disk", length, disk)
	if disk >= 1<<20 {
		t.Errorf("checkpoint occupies %d bytes of disk, want well under 1 MiB", disk)
	}
	wantShards := []string{
		"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
		"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
	}
	if !slices.Equal(shards, wantShards) {
		t.Errorf("shards %v, want %v", shards, wantShards)
	}

	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(c.Names()); n != mmada8BTensors {
		t.Fatalf("checkpoint lists %d tensors, want %d", n, mmada8BTensors)
	}
	var total int64
	for _, want := range infos {
		got, ok := c.Info(want.Name)
		if !ok {
			t.Fatalf("%s missing", want.Name)
		}
		if got.DType != ir.BF16 || !slices.Equal(got.Shape, want.Shape) {
			t.Errorf("%s is %v%v, want bf16%v", want.Name, got.DType, got.Shape, want.Shape)
		}
		total += got.Size
	}
	if total != 2*mmada8BParameters {
		t.Errorf("data totals %d bytes, want %d", total, 2*mmada8BParameters)
	}
	if wte, _ := c.Info("model.transformer.wte.weight"); !slices.Equal(wte.Shape, []int64{134656, 4096}) {
		t.Errorf("wte shape %v", wte.Shape)
	}
	for _, f := range c.files {
		if f.isMapped() {
			t.Errorf("%s was mapped while only headers were needed", f.path)
		}
	}
	// Each shard holds roughly a quarter of the bytes.
	perShard := map[string]int64{}
	for _, name := range c.Names() {
		info, _ := c.Info(name)
		perShard[filepath.Base(info.File)] += info.Size
	}
	for name, size := range perShard {
		if size < total/8 || size > total/2 {
			t.Errorf("%s holds %d of %d bytes, far from a quarter", name, size, total)
		}
	}

	cfg, err := LoadLLaDAConfig(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMagvitManifest(t *testing.T) {
	config, infos, err := LoadManifest(magvitV2Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if config != nil {
		t.Errorf("MAGVIT manifest returned a config: %s", config)
	}
	if len(infos) != 382 {
		t.Fatalf("%d tensors, want 382", len(infos))
	}
	counts := map[ir.DType]int{}
	for _, info := range infos {
		counts[info.DType]++
	}
	if counts[ir.I64] == 0 || counts[ir.F32] == 0 || counts[ir.InvalidDType] != 0 {
		t.Errorf("dtype counts %v, want f32 and i64 only", counts)
	}
	if infos[0].Name != "encoder.conv_in.weight" || !slices.Equal(infos[0].Shape, []int64{128, 3, 3, 3}) {
		t.Errorf("first tensor %s%v, want encoder.conv_in.weight[128 3 3 3]", infos[0].Name, infos[0].Shape)
	}

	path := filepath.Join(t.TempDir(), "pytorch_model.safetensors")
	if err := WriteSparseSafetensors(path, infos); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Names()) != 382 {
		t.Errorf("checkpoint lists %d tensors", len(c.Names()))
	}
}

func TestManifestDTypeDefault(t *testing.T) {
	_, infos, err := LoadManifest(mmada8BManifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.DType != ir.InvalidDType {
			t.Fatalf("%s has dtype %v although the manifest gives none", info.Name, info.DType)
		}
	}
	infos[0].DType = ir.F32
	ApplyDefaultDType(infos, ir.BF16)
	if infos[0].DType != ir.F32 || infos[1].DType != ir.BF16 {
		t.Errorf("ApplyDefaultDType gave %v, %v; want f32 kept, bf16 filled", infos[0].DType, infos[1].DType)
	}
}

func TestManifestErrors(t *testing.T) {
	cases := []struct {
		name, content, want string
	}{
		{"not JSON", `{"tensors": [`, "unexpected end"},
		{"no tensors", `{"model": "x", "tensors": []}`, "no tensors listed"},
		{"missing name", `{"tensors": [{"shape": [1]}]}`, "name is missing"},
		{"missing shape", `{"tensors": [{"name": "a"}]}`, `tensor 0 ("a"): shape is missing`},
		{"duplicate", `{"tensors": [{"name": "a", "shape": [1]}, {"name": "a", "shape": [2]}]}`, `tensor 1 ("a"): name appears twice`},
		{"negative dim", `{"tensors": [{"name": "a", "shape": [-2]}]}`, "dimension -2 is negative"},
		{"bad dtype", `{"tensors": [{"name": "a", "shape": [1], "dtype": "complex64"}]}`, `dtype "complex64" is not one of`},
		{"parameter count", `{"tensors": [{"name": "a", "shape": [2, 3]}], "parameter_count": 7}`, "parameter_count is 7 but the tensors hold 6 elements"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.json")
			os.WriteFile(path, []byte(tc.content), 0o644)
			_, _, err := LoadManifest(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, _, err := LoadManifest(filepath.Join(t.TempDir(), "absent.json")); err == nil {
		t.Error("loaded a manifest that does not exist")
	}
}

func TestManifestDTypeNames(t *testing.T) {
	for name, want := range map[string]ir.DType{
		"float32": ir.F32, "torch.bfloat16": ir.BF16, "int64": ir.I64, "BF16": ir.BF16, "bool": ir.Bool, "float16": ir.F16,
	} {
		if got, ok := parseManifestDType(name); !ok || got != want {
			t.Errorf("%q parsed as %v, %v; want %v", name, got, ok, want)
		}
	}
}
