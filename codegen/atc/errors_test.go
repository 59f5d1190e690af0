package atc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readFixture returns testdata/name. infershape_failure.txt imitates the
// output of an ATC run that failed in shape inference: the failure line, an
// E-code block whose follow-up lines repeat the code or are indented, GE's
// [FUNC][FILE][LINE] tags, a second block and a warning. The stand-in atc
// script of the Run tests prints the same file.
func readFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParseOutputInferShapeFailure(t *testing.T) {
	errs, warnings, failure := parseOutput(readFixture(t, "infershape_failure.txt"))

	if !strings.HasPrefix(failure, "ATC run failed, Please check the detail log") {
		t.Errorf("failure line = %q", failure)
	}
	if len(warnings) != 1 || warnings[0].Code != "W11001" {
		t.Errorf("warnings = %+v, want one W11001", warnings)
	}
	if len(errs) != 2 {
		t.Fatalf("got %d error reports, want 2: %+v", len(errs), errs)
	}

	first := errs[0]
	if first.Code != "E19999" || first.Message != "Inner Error!" {
		t.Errorf("first report = %q %q", first.Code, first.Message)
	}
	if len(first.Detail) != 5 {
		t.Fatalf("first report has %d detail lines, want 5: %q", len(first.Detail), first.Detail)
	}
	if !strings.HasPrefix(first.Detail[0], "op[/model/layers.3/self_attn/MatMul_2]") {
		t.Errorf("detail[0] = %q, want the repeated-code line without its code", first.Detail[0])
	}
	if first.Detail[2] != "TraceBack (most recent call last):" {
		t.Errorf("detail[2] = %q, want the trimmed TraceBack line", first.Detail[2])
	}

	second := errs[1]
	if second.Code != "EZ3003" || !strings.HasPrefix(second.Message, "No supported Ops kernel") {
		t.Errorf("second report = %q %q", second.Code, second.Message)
	}
}

func TestNewRunErrorNamesOp(t *testing.T) {
	out := readFixture(t, "infershape_failure.txt")
	e := newRunError(out, 1, errors.New("exit status 1"))

	if e.Code != "E19999" || e.Message != "Inner Error!" {
		t.Errorf("Code/Message = %q/%q", e.Code, e.Message)
	}
	if e.Op != "/model/layers.3/self_attn/MatMul_2" || e.OpType != "MatMul" {
		t.Errorf("Op/OpType = %q/%q", e.Op, e.OpType)
	}
	if e.Output != out || e.ExitCode != 1 {
		t.Errorf("Output kept = %v, ExitCode = %d", e.Output == out, e.ExitCode)
	}

	msg := e.Error()
	for _, want := range []string{
		"atc failed with exit status 1",
		"E19999: Inner Error! | op[/model/layers.3/self_attn/MatMul_2]",
		"(op /model/layers.3/self_attn/MatMul_2, type MatMul)",
		"1 more error reports",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "[FUNC:") {
		t.Errorf("Error() keeps the source tags: %q", msg)
	}
}

func TestFindOpPatterns(t *testing.T) {
	cases := []struct {
		line, op, opType string
	}{
		{"No ONNX parser is registered for optype ai.onnx::19::Add.", "", "Add"},
		{"Call InferShapeAndType for node:Mul_7(Mul) failed", "Mul_7", "Mul"},
		{"No supported Ops kernel and engine are found for [Erf_12], optype [Erf].", "Erf_12", "Erf"},
		{"check failed, op_name[Gather_3], op_type[GatherV2]", "Gather_3", "GatherV2"},
		{"op[Softmax_9] has an invalid attribute", "Softmax_9", ""},
		{"Value [Ascend999] for parameter [--soc_version] is invalid.", "", ""},
	}
	for _, tc := range cases {
		op, opType := findOp([]Report{{Code: "E10001", Message: tc.line}})
		if op != tc.op || opType != tc.opType {
			t.Errorf("findOp(%q) = %q, %q; want %q, %q", tc.line, op, opType, tc.op, tc.opType)
		}
	}
}

func TestNewRunErrorWithoutCodes(t *testing.T) {
	e := newRunError("ATC start working now, please wait for a moment.\nATC run failed, Please check the detail log, Try 'atc --help' for more information\n", 255, errors.New("exit status 255"))
	if e.Code != "" || !strings.HasPrefix(e.Message, "ATC run failed") {
		t.Errorf("Code/Message = %q/%q", e.Code, e.Message)
	}
	if got := e.Error(); got != "atc failed with exit status 255: "+e.Message {
		t.Errorf("Error() = %q", got)
	}

	e = newRunError("Segmentation fault\n", 139, errors.New("exit status 139"))
	if e.Message != "Segmentation fault" {
		t.Errorf("Message = %q, want the last output line", e.Message)
	}
}

func TestErrorUnwrapsCause(t *testing.T) {
	e := newRunError("", -1, fmt.Errorf("run: %w", context.DeadlineExceeded))
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Error("errors.Is(e, DeadlineExceeded) = false")
	}
	if !strings.HasPrefix(e.Error(), "atc timed out") {
		t.Errorf("Error() = %q", e.Error())
	}
	e = newRunError("", -1, context.Canceled)
	if !strings.HasPrefix(e.Error(), "atc was canceled") {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestReportStartIgnoresWords(t *testing.T) {
	for _, line := range []string{"ERRORS: none", "WARNING: low memory", "[ERROR] GE(123,atc.bin):2025-01-01"} {
		if reportStart.MatchString(line) {
			t.Errorf("reportStart matches %q", line)
		}
	}
	for _, line := range []string{"E10001: x", "EZ3003: y", "W11001: z", "E89999 op[a]"} {
		if !reportStart.MatchString(line) {
			t.Errorf("reportStart does not match %q", line)
		}
	}
}

func TestTailBufferKeepsEnd(t *testing.T) {
	b := &tailBuffer{max: 8}
	for i := range 10 {
		fmt.Fprintf(b, "%d", i)
	}
	fmt.Fprint(b, "abcdefghij")
	if got := b.String(); got != "[earlier output dropped]\ncdefghij" {
		t.Errorf("String() = %q", got)
	}
	small := &tailBuffer{max: 8}
	fmt.Fprint(small, "abc")
	if small.String() != "abc" {
		t.Errorf("String() = %q, want abc", small.String())
	}
}
