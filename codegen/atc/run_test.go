package atc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmadac/mmadac/codegen/om"
)

// The stand-ins below are POSIX shell scripts named atc. They never touch
// anything outside the test's temporary directory.

func skipWithoutShell(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in atc scripts need a POSIX shell")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
}

// writeScript writes an executable shell script named name into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// project sets up a model directory with an .onnx file and returns options
// that convert it, plus the directory.
func project(t *testing.T) (Options, string) {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "models", "transformer.onnx")
	if err := os.MkdirAll(filepath.Dir(model), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(model, []byte("onnx stand-in"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{
		Model:       model,
		Output:      filepath.Join(dir, "models", "om", "transformer"),
		SoC:         "Ascend910B3",
		InputShapes: []InputShape{{Name: "input_ids", Dims: []int64{1, -1}}},
		DynamicDims: [][]int64{{128}, {256}},
		Timeout:     10 * time.Second,
	}, dir
}

// fakeATC writes a stand-in that records its arguments (one per line) and
// its working directory under record/, prints ATC's success lines, and copies
// a valid OM file built with om.WriteFile to --output + suffix + ".om".
func fakeATC(t *testing.T, dir, suffix string) (atcPath, recordDir string) {
	t.Helper()
	recordDir = filepath.Join(dir, "record")
	if err := os.Mkdir(recordDir, 0o755); err != nil {
		t.Fatal(err)
	}
	fixture := filepath.Join(dir, "fixture.om")
	err := om.WriteFile(fixture, om.Builder{
		Name:            "transformer",
		ModelType:       om.ModelTypeStandard,
		PlatformVersion: "Ascend910B3",
		Dynamic:         true,
		Models: [][]om.Payload{{
			{Type: om.ModelDef, Data: []byte("graph")},
			{Type: om.WeightsData, Data: make([]byte, 64)},
			{Type: om.TaskInfo, Data: []byte("tasks")},
			{Type: om.TBEKernels, Data: []byte("kernels")},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	script := `printf '%s\n' "$@" > '` + recordDir + `/args'
pwd -P > '` + recordDir + `/cwd'
out=
for a in "$@"; do
	case "$a" in
	--output=*) out="${a#--output=}" ;;
	esac
done
echo "ATC start working now, please wait for a moment."
cp '` + fixture + `' "${out}` + suffix + `.om" || exit 3
echo "W11001: Op [Cast_1] does not hit the high-priority operator information library."
echo "ATC run success, welcome to the next use."
`
	return writeScript(t, dir, "atc", script), recordDir
}

func TestRunSuccess(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	o.ATC, _ = fakeATC(t, dir, "")
	recordDir := filepath.Join(dir, "record")

	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}

	recorded, err := os.ReadFile(filepath.Join(recordDir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{
		"--framework=5",
		"--model=transformer.onnx",
		"--output=om/transformer",
		"--soc_version=Ascend910B3",
		"--input_shape=input_ids:1,-1",
		"--dynamic_dims=128;256",
		"--input_format=ND",
		"--precision_mode_v2=fp16",
		"--log=error",
	}
	if got := strings.Split(strings.TrimSuffix(string(recorded), "\n"), "\n"); !slices.Equal(got, wantArgs) {
		t.Errorf("atc received\n%q\nwant\n%q", got, wantArgs)
	}
	if !slices.Equal(res.Args, wantArgs) {
		t.Errorf("Result.Args = %q", res.Args)
	}

	cwd, err := os.ReadFile(filepath.Join(recordDir, "cwd"))
	if err != nil {
		t.Fatal(err)
	}
	wantDir, _ := filepath.EvalSymlinks(filepath.Join(dir, "models"))
	if got := strings.TrimSpace(string(cwd)); got != wantDir {
		t.Errorf("atc ran in %q, want the model directory %q", got, wantDir)
	}

	if res.OMPath != o.Output+".om" {
		t.Errorf("OMPath = %q, want %q", res.OMPath, o.Output+".om")
	}
	if res.Info == nil || res.Info.Name != "transformer" || !res.Info.Dynamic || len(res.Info.Partitions) != 4 {
		t.Errorf("Info = %+v", res.Info)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].Code != "W11001" {
		t.Errorf("Warnings = %+v", res.Warnings)
	}
	if !strings.Contains(res.Output, "ATC run success") {
		t.Errorf("Output = %q", res.Output)
	}
	if res.ATC != o.ATC || res.Duration <= 0 {
		t.Errorf("ATC = %q, Duration = %v", res.ATC, res.Duration)
	}
}

func TestRunFindsHostEnvName(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	o.ATC, _ = fakeATC(t, dir, "_linux_x86_64")

	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if want := o.Output + "_linux_x86_64.om"; res.OMPath != want {
		t.Errorf("OMPath = %q, want %q", res.OMPath, want)
	}
}

func TestRunFailureReportsOp(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	fixture, err := filepath.Abs(filepath.Join("testdata", "infershape_failure.txt"))
	if err != nil {
		t.Fatal(err)
	}
	o.ATC = writeScript(t, dir, "atc", "cat '"+fixture+"'\nexit 1\n")

	_, err = Run(context.Background(), o)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Run error = %v (%T), want *Error", err, err)
	}
	if e.ExitCode != 1 || e.Code != "E19999" {
		t.Errorf("ExitCode/Code = %d/%q", e.ExitCode, e.Code)
	}
	if e.Op != "/model/layers.3/self_attn/MatMul_2" || e.OpType != "MatMul" {
		t.Errorf("Op/OpType = %q/%q", e.Op, e.OpType)
	}
	if len(e.Reports) != 2 || e.Reports[1].Code != "EZ3003" {
		t.Errorf("Reports = %+v", e.Reports)
	}
	if !strings.Contains(e.Output, "TraceBack") {
		t.Errorf("Output does not keep the full text: %q", e.Output)
	}
	if !strings.Contains(err.Error(), "exit status 1: E19999") {
		t.Errorf("Error() = %q", err)
	}
}

func TestRunTimeoutKillsATC(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	// The script's child sleep keeps the output pipe open, so Run returns
	// quickly only if the whole process group is killed.
	o.ATC = writeScript(t, dir, "atc", "echo 'ATC start working now, please wait for a moment.'\nsleep 30\necho never\n")
	o.Timeout = 300 * time.Millisecond

	start := time.Now()
	_, err := Run(context.Background(), o)
	elapsed := time.Since(start)

	if elapsed > 1500*time.Millisecond {
		t.Errorf("Run returned after %v, want soon after the 300ms timeout", elapsed)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Run error = %v, want *Error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(err, DeadlineExceeded) = false for %v", err)
	}
	if e.ExitCode != -1 {
		t.Errorf("ExitCode = %d, want -1", e.ExitCode)
	}
	if !strings.Contains(err.Error(), "timed out") || !strings.Contains(e.Message, "300ms") || !strings.Contains(e.Message, "ATC start working") {
		t.Errorf("Error() = %q, Message = %q", err, e.Message)
	}
}

func TestRunCanceled(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	o.ATC = writeScript(t, dir, "atc", "sleep 30\n")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()

	_, err := Run(ctx, o)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run error = %v, want the parent context's deadline", err)
	}
}

func TestRunExitZeroWithoutOM(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	o.ATC = writeScript(t, dir, "atc", "echo 'ATC run success, welcome to the next use.'\n")
	// A previous OM at the output path must not count as this run's result.
	if err := os.MkdirAll(filepath.Dir(o.Output), 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := om.Build(om.Builder{Models: [][]om.Payload{{{Type: om.ModelDef, Data: []byte("old")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.Output+".om", stale, 0o644); err != nil {
		t.Fatal(err)
	}

	_, err = Run(context.Background(), o)
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Message, "wrote no OM file") {
		t.Fatalf("Run error = %v, want an *Error about the missing OM", err)
	}
	if want := "atc exited with status 0 but wrote no OM file at " + o.Output + ".om"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if _, err := os.Stat(o.Output + ".om"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale OM file still exists (stat error %v)", err)
	}
}

func TestRunRejectsInvalidOM(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	o.ATC = writeScript(t, dir, "atc", `for a in "$@"; do case "$a" in --output=*) out="${a#--output=}";; esac; done
echo garbage > "$out.om"
`)

	_, err := Run(context.Background(), o)
	var fe *om.FormatError
	if !errors.As(err, &fe) || fe.Field != "file size" {
		t.Fatalf("Run error = %v, want an om.FormatError about the file size", err)
	}
	if !strings.Contains(err.Error(), "invalid OM file") {
		t.Errorf("Error() = %q", err)
	}
}

func TestRunChecksInputsBeforeStarting(t *testing.T) {
	skipWithoutShell(t)
	o, dir := project(t)
	o.ATC = writeScript(t, dir, "atc", "touch '"+filepath.Join(dir, "started")+"'\n")

	missing := o
	missing.Model = filepath.Join(dir, "models", "missing.onnx")
	if _, err := Run(context.Background(), missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run with a missing model = %v, want os.ErrNotExist", err)
	}

	invalid := o
	invalid.SoC = "Ascend910"
	if _, err := Run(context.Background(), invalid); err == nil || !strings.Contains(err.Error(), "SoC version") {
		t.Errorf("Run with SoC Ascend910 = %v, want a SoC error", err)
	}

	noATC := o
	noATC.ATC = filepath.Join(dir, "nowhere", "atc")
	if _, err := Run(context.Background(), noATC); !errors.Is(err, ErrNotFound) {
		t.Errorf("Run with a missing atc = %v, want ErrNotFound", err)
	}

	if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
		t.Error("atc was started despite invalid inputs")
	}
}

func TestFind(t *testing.T) {
	skipWithoutShell(t)
	dir := t.TempDir()
	atc := writeScript(t, dir, "atc", "exit 0\n")

	if got, err := Find(atc); err != nil || got != atc {
		t.Errorf("Find(%q) = %q, %v", atc, got, err)
	}

	t.Setenv("PATH", dir)
	if got, err := Find(""); err != nil || got != atc {
		t.Errorf("Find(\"\") with atc on PATH = %q, %v", got, err)
	}

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		filepath.Join(dir, "missing"): "does not exist",
		dir:                           "is a directory",
		plain:                         "not executable",
		"atc-8.0":                     `no "atc-8.0" on PATH`,
	}
	for arg, fragment := range cases {
		_, err := Find(arg)
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), fragment) {
			t.Errorf("Find(%q) = %v, want ErrNotFound mentioning %q", arg, err, fragment)
		}
	}

	t.Setenv("PATH", t.TempDir())
	if _, err := Find(""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "set_env.sh") {
		t.Errorf("Find(\"\") without atc = %v, want ErrNotFound with a hint", err)
	}
}
