package atc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func baseOptions(dir string) Options {
	return Options{
		Model:  filepath.Join(dir, "transformer.onnx"),
		Output: filepath.Join(dir, "out", "transformer"),
		SoC:    "Ascend910B3",
	}
}

func TestArgsStaticShape(t *testing.T) {
	o := baseOptions(t.TempDir())
	o.InputShapes = []InputShape{{Name: "input_ids", Dims: []int64{1, 256}}}

	got, err := o.Args()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--framework=5",
		"--model=transformer.onnx",
		"--output=out/transformer",
		"--soc_version=Ascend910B3",
		"--input_shape=input_ids:1,256",
		"--input_format=ND",
		"--precision_mode_v2=fp16",
		"--log=error",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Args() =\n%q\nwant\n%q", got, want)
	}
}

func TestArgsDynamicDims(t *testing.T) {
	o := baseOptions(t.TempDir())
	o.InputShapes = []InputShape{
		{Name: "input_ids", Dims: []int64{1, -1}},
		{Name: "attention_bias", Dims: []int64{1, 1, -1, -1}},
		{Name: "step", Dims: nil}, // scalar
	}
	o.DynamicDims = [][]int64{{128, 128, 128}, {256, 256, 256}}
	o.PrecisionMode = "mixed_bfloat16"
	o.LogLevel = "info"
	o.ExtraArgs = []string{"--op_compiler_cache_mode=enable"}

	got, err := o.Args()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--framework=5",
		"--model=transformer.onnx",
		"--output=out/transformer",
		"--soc_version=Ascend910B3",
		"--input_shape=input_ids:1,-1;attention_bias:1,1,-1,-1;step:",
		"--dynamic_dims=128,128,128;256,256,256",
		"--input_format=ND",
		"--precision_mode_v2=mixed_bfloat16",
		"--log=info",
		"--op_compiler_cache_mode=enable",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Args() =\n%q\nwant\n%q", got, want)
	}
}

func TestArgsPathsOutsideWorkDir(t *testing.T) {
	dir := t.TempDir()
	o := baseOptions(dir)
	o.WorkDir = filepath.Join(dir, "work")
	o.InputFormat = "NCHW"

	got, err := o.Args()
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != "--model="+filepath.Join(dir, "transformer.onnx") {
		t.Errorf("model arg = %q, want the absolute path", got[1])
	}
	if got[2] != "--output="+filepath.Join(dir, "out", "transformer") {
		t.Errorf("output arg = %q, want the absolute path", got[2])
	}
	if got[4] != "--input_format=NCHW" {
		t.Errorf("format arg = %q", got[4])
	}
}

func TestArgsRelativePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("bundle", 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Model: "bundle/vq.onnx", Output: "bundle/vq", SoC: "Ascend910B4"}

	got, err := o.Args()
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != "--model=vq.onnx" || got[2] != "--output=vq" {
		t.Errorf("Args() paths = %q %q, want vq.onnx and vq relative to the model's directory", got[1], got[2])
	}
	wd, err := o.workDir()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.Abs("bundle"); wd != want {
		t.Errorf("workDir() = %q, want %q", wd, want)
	}
}

func TestCommandLineQuotes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my models")
	o := baseOptions(dir)
	o.InputShapes = []InputShape{{Name: "input_ids", Dims: []int64{1, -1}}, {Name: "mask", Dims: []int64{1, -1}}}
	o.DynamicDims = [][]int64{{64, 64}, {128, 128}}
	o.ATC = "/opt/cann/bin/atc"

	got, err := o.CommandLine()
	if err != nil {
		t.Fatal(err)
	}
	want := "cd '" + dir + "' && /opt/cann/bin/atc --framework=5 --model=transformer.onnx --output=out/transformer" +
		" --soc_version=Ascend910B3 --input_shape='input_ids:1,-1;mask:1,-1' --dynamic_dims='64,64;128,128'" +
		" --input_format=ND --precision_mode_v2=fp16 --log=error"
	if got != want {
		t.Errorf("CommandLine() =\n%s\nwant\n%s", got, want)
	}
}

func TestCommandLineRejectsInvalidOptions(t *testing.T) {
	_, err := Options{}.CommandLine()
	if err == nil || !strings.Contains(err.Error(), "Model is empty") {
		t.Errorf("CommandLine() error = %v, want the Model error", err)
	}
}

func TestShellQuote(t *testing.T) {
	cases := map[string]string{
		"":                  "''",
		"plain/path-1.onnx": "plain/path-1.onnx",
		"a b":               "'a b'",
		"it's":              `'it'\''s'`,
		"x;y":               "'x;y'",
		"$HOME":             "'$HOME'",
	}
	for in, want := range cases {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestArgsRejects(t *testing.T) {
	many := make([][]int64, 101)
	for i := range many {
		many[i] = []int64{int64(i + 1)}
	}
	dyn := []InputShape{{Name: "x", Dims: []int64{1, -1}}}
	cases := []struct {
		name     string
		edit     func(*Options)
		fragment string
	}{
		{"empty model", func(o *Options) { o.Model = "" }, "Model is empty"},
		{"empty output", func(o *Options) { o.Output = "" }, "Output is empty"},
		{"output with suffix", func(o *Options) { o.Output += ".om" }, "drop the suffix"},
		{"unknown SoC", func(o *Options) { o.SoC = "Ascend999" }, `invalid SoC version "Ascend999"`},
		{"empty input name", func(o *Options) { o.InputShapes = []InputShape{{Dims: []int64{1}}} }, "empty name"},
		{"separator in name", func(o *Options) { o.InputShapes = []InputShape{{Name: "a;b", Dims: []int64{1}}} }, `"a;b"`},
		{"repeated input", func(o *Options) {
			o.InputShapes = []InputShape{{Name: "a", Dims: []int64{1}}, {Name: "a", Dims: []int64{2}}}
		}, `repeats input "a"`},
		{"zero dimension", func(o *Options) { o.InputShapes = []InputShape{{Name: "a", Dims: []int64{1, 0}}} }, "dimension 1 is 0"},
		{"dimension -2", func(o *Options) { o.InputShapes = []InputShape{{Name: "a", Dims: []int64{-2}}} }, "dimension 0 is -2"},
		{"gears without -1", func(o *Options) {
			o.InputShapes = []InputShape{{Name: "a", Dims: []int64{1}}}
			o.DynamicDims = [][]int64{{1}, {2}}
		}, "no InputShapes dimension is -1"},
		{"one gear", func(o *Options) { o.InputShapes = dyn; o.DynamicDims = [][]int64{{8}} }, "has 1 gear(s)"},
		{"101 gears", func(o *Options) { o.InputShapes = dyn; o.DynamicDims = many }, "has 101 gear(s)"},
		{"gear length", func(o *Options) { o.InputShapes = dyn; o.DynamicDims = [][]int64{{8}, {8, 9}} }, "DynamicDims[1] has 2 values"},
		{"gear value", func(o *Options) { o.InputShapes = dyn; o.DynamicDims = [][]int64{{8}, {0}} }, "DynamicDims[1][0] is 0"},
		{"repeated gear", func(o *Options) { o.InputShapes = dyn; o.DynamicDims = [][]int64{{8}, {16}, {8}} }, "DynamicDims[2] repeats gear 0"},
		{"gears need ND", func(o *Options) {
			o.InputShapes = dyn
			o.DynamicDims = [][]int64{{8}, {16}}
			o.InputFormat = "NCHW"
		}, "requires ND"},
		{"unknown format", func(o *Options) { o.InputFormat = "NHWC" }, `invalid InputFormat "NHWC"`},
		{"unknown precision", func(o *Options) { o.PrecisionMode = "force_fp16" }, `invalid precision mode "force_fp16"`},
		{"bf16 spelling", func(o *Options) { o.PrecisionMode = "mixed_bf16" }, `spells it "mixed_bfloat16"`},
		{"bf16 on 310P", func(o *Options) { o.SoC = "Ascend310P3"; o.PrecisionMode = "mixed_bfloat16" }, "needs bfloat16"},
		{"hif8 outside 950", func(o *Options) { o.PrecisionMode = "cube_hif8" }, "only for Ascend 950"},
		{"unknown log level", func(o *Options) { o.LogLevel = "verbose" }, `invalid LogLevel "verbose"`},
		{"negative timeout", func(o *Options) { o.Timeout = -time.Second }, "negative"},
		{"extra without dashes", func(o *Options) { o.ExtraArgs = []string{"fast"} }, "not a flag"},
		{"extra repeats managed flag", func(o *Options) { o.ExtraArgs = []string{"--soc_version=Ascend910B4"} }, "--soc_version, which Options already writes"},
		{"extra precision_mode", func(o *Options) { o.ExtraArgs = []string{"--precision_mode=force_fp32"} }, "cannot combine"},
		{"extra mode", func(o *Options) { o.ExtraArgs = []string{"--mode=3"} }, "--mode"},
		{"extra batch size with gears", func(o *Options) {
			o.InputShapes = dyn
			o.DynamicDims = [][]int64{{8}, {16}}
			o.ExtraArgs = []string{"--dynamic_batch_size=1,2"}
		}, "together with --dynamic_dims"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := baseOptions(t.TempDir())
			tc.edit(&o)
			_, err := o.Args()
			if err == nil {
				t.Fatal("Args() succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.fragment) {
				t.Errorf("error %q does not contain %q", err, tc.fragment)
			}
		})
	}
}

func TestValidateSoC(t *testing.T) {
	for _, s := range KnownSoCs() {
		if err := ValidateSoC(s.Name); err != nil {
			t.Errorf("ValidateSoC(%q) = %v", s.Name, err)
		}
	}

	cases := map[string]string{
		"":            "missing SoC version",
		"ascend910b3": `use "Ascend910B3"`,
		"Ascend910":   "name the exact chip",
		"910B3":       "npu-smi info",
	}
	for name, fragment := range cases {
		err := ValidateSoC(name)
		if err == nil || !strings.Contains(err.Error(), fragment) {
			t.Errorf("ValidateSoC(%q) = %v, want an error containing %q", name, err, fragment)
		}
	}

	// The error for an unknown name lists the valid ones.
	if err := ValidateSoC("Ascend999"); !strings.Contains(err.Error(), "Ascend910B4-1") || !strings.Contains(err.Error(), "Ascend310P3") {
		t.Errorf("error does not list the valid names: %v", err)
	}
}

func TestLookupSoCWarnsAboutAscend910B(t *testing.T) {
	s, ok := LookupSoC("Ascend910B")
	if !ok || s.BF16 || !strings.Contains(s.Note, "first-generation") {
		t.Errorf("LookupSoC(Ascend910B) = %+v, %v; want a first-generation entry with a note", s, ok)
	}
	if s, _ := LookupSoC("Ascend910B3"); !s.BF16 || s.Note != "" {
		t.Errorf("LookupSoC(Ascend910B3) = %+v; want BF16 and no note", s)
	}
}

func TestPrecisionModesListsDefaultFirst(t *testing.T) {
	modes := PrecisionModes()
	if len(modes) != 7 || modes[0][0] != DefaultPrecisionMode {
		t.Errorf("PrecisionModes() = %q", modes)
	}
}
