package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/codegen/om"
	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/internal/engine"
)

// execute runs one command with args and returns stdout and the error.
func execute(cmd *cobra.Command, args ...string) (string, error) {
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

// buildCmd is a stand-in for `mmadac build` with the ascend flags wired
// the way build.go is expected to wire them.
func buildCmd() *cobra.Command {
	var opts engine.BuildOptions
	cmd := &cobra.Command{Use: "build"}
	af := addAscendFlags(cmd)
	cmd.Flags().StringVar(&opts.Model, "model", "", "")
	cmd.Flags().StringVar(&opts.Out, "out", "", "")
	cmd.Flags().StringVar(&opts.Target, "target", "onnx", "")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := af.checkTarget(cmd, opts.Target); err != nil {
			return err
		}
		return runBuildAscend(cmd, opts, af)
	}
	return cmd
}

func TestBuildAscendInspectAndCheck(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	out := filepath.Join(t.TempDir(), "bundle")
	stdout, err := execute(buildCmd(), "--model", filepath.Join(golden, "mmada"), "--out", out, "--target", "ascend",
		"--seq-len", "16,32", "--soc", "Ascend910B3", "--precision", "f16")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"built " + out + "/transformer.onnx for ascend", "check-ascend: no node that ATC would reject",
		"ATC did not run (atc is not on PATH)", "--dynamic_dims='16,16;32,32'", "--precision_mode_v2=fp16"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("build output lacks %q:\n%s", want, stdout)
		}
	}

	stdout, err = execute(newInspectCmd(), out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"target:     ascend", "input  input_ids i64[1(batch),-1(seq)]", "gears (one value per -1 input dimension): [[16 16] [32 32]]",
		"precision = f16", "rope_table_length ints=[4096]", "... ", "inspect --all"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect bundle output lacks %q:\n%s", want, stdout)
		}
	}

	stdout, err = execute(newInspectCmd(), filepath.Join(out, "transformer.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"opset ai.onnx 17", "input  input_ids INT64[batch,seq]", "Softmax=2", "21 external in 21 file(s)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect onnx output lacks %q:\n%s", want, stdout)
		}
	}

	stdout, err = execute(newCheckAscendCmd(), filepath.Join(out, "transformer.onnx"))
	if err != nil || !strings.Contains(stdout, "ATC-ready") {
		t.Errorf("check-ascend on the ascend build: %v\n%s", err, stdout)
	}
}

func TestCheckAscendReportsONNXTargetModel(t *testing.T) {
	dir := t.TempDir()
	res, err := engine.Build(engine.BuildOptions{Model: filepath.Join(golden, "mmada-bf16"), Out: dir, Weights: onnx.WeightsExternal})
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := execute(newCheckAscendCmd(), res.ModelFile)
	if err == nil || !strings.Contains(err.Error(), "finding(s)") {
		t.Fatalf("check-ascend on the onnx target's model: %v", err)
	}
	for _, want := range []string{`custom domain "com.microsoft"`, "element type bfloat16", "\tinitializer\topset -\texternal data at offset"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}

func TestInspectOM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.om")
	err := om.WriteFile(path, om.Builder{Name: "transformer", PlatformVersion: "Ascend910B3",
		Models: [][]om.Payload{{{Type: om.ModelDef, Data: []byte("graph")}}}})
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := execute(newInspectCmd(), path)
	if err != nil || !strings.Contains(stdout, "Ascend OM") || !strings.Contains(stdout, "transformer") {
		t.Errorf("inspect OM: %v\n%s", err, stdout)
	}
}

func TestInspectRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := execute(newInspectCmd(), dir); err == nil || !strings.Contains(err.Error(), "without a bundle manifest") {
		t.Errorf("empty folder: %v", err)
	}
	txt := filepath.Join(dir, "x.txt")
	os.WriteFile(txt, []byte("x"), 0o644)
	if _, err := execute(newInspectCmd(), txt); err == nil || !strings.Contains(err.Error(), "give an .om file") {
		t.Errorf("text file: %v", err)
	}
	bad := filepath.Join(dir, "bad.om")
	os.WriteFile(bad, []byte("not an om"), 0o644)
	if _, err := execute(newInspectCmd(), bad); err == nil {
		t.Error("a broken OM file gives no error")
	}
}

func TestAscendFlagsNeedAscendTarget(t *testing.T) {
	_, err := execute(buildCmd(), "--model", "m", "--out", "o", "--seq-len", "256")
	if err == nil || !strings.Contains(err.Error(), "--seq-len applies to --target ascend only") {
		t.Errorf("--seq-len with the onnx target: %v", err)
	}
}
