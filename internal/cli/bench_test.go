package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const benchTinyModel = "../../testdata/upstream-tiny/mmada"

func runBenchArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newBenchCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestBenchRejectsBadFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "video"}, `unknown scenario "video"`},
		{[]string{"--backend", "tpu"}, `--backend "tpu"`},
		{[]string{"--passes", "some"}, `--passes "some"`},
		{[]string{"--parallel-threshold", "1.5"}, "--parallel-threshold 1.5"},
		{[]string{"--plot", "steps.png"}, "name the file *.svg"},
		{[]string{"--block-cache=suffix"}, "--block-cache=suffix: unknown mode"},
		{[]string{"--cases", "x.json", "--plot", "x.svg"}, "--cases runs none"},
		{[]string{"--plot", "/nonexistent-mmadac-dir/x.svg"}, "folder /nonexistent-mmadac-dir does not exist"},
		{[]string{"--model", benchTinyModel, "--cases", "x.json"}, "add --parallel-threshold, --stop-at-eos or --block-cache"},
		{[]string{"--model", benchTinyModel, "--backend", "interp", "--peak-backend", "tpu"}, `--peak-backend "tpu"`},
		{[]string{"--model", benchTinyModel, "--backend", "interp", "--gen-length", "10", "--block-length", "4"}, "not a multiple"},
	}
	for _, c := range cases {
		_, err := runBenchArgs(t, c.args...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bench %v: error %v, want a usage error mentioning %q", c.args, err, c.want)
		}
	}
}

func TestBenchMissingModel(t *testing.T) {
	_, err := runBenchArgs(t, "--model", filepath.Join(t.TempDir(), "absent"), "--backend", "interp")
	if err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("bench on a missing folder: %v, want an error naming it", err)
	}
	_, err = runBenchArgs(t, "--model", benchTinyModel, "--onnx", filepath.Join(t.TempDir(), "absent.onnx"))
	if err == nil || !strings.Contains(err.Error(), "absent.onnx") {
		t.Errorf("bench on a missing ONNX file: %v, want an error naming it", err)
	}
}

func TestBenchTinyJSONAndPlot(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "steps.svg")
	out, err := runBenchArgs(t, "--model", benchTinyModel, "--backend", "interp", "--scenario", "text,forward",
		"--prompt-length", "12", "--gen-length", "16", "--block-length", "8", "--steps", "8", "--forward-runs", "2",
		"--parallel-threshold", "0.5", "--peak-gflops", "50", "--json", "--plot", plot)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Results []struct {
			Name       string  `json:"name"`
			Mode       string  `json:"mode"`
			Steps      int     `json:"steps"`
			PeakGFLOPS float64 `json:"peak_gflops"`
			Agreement  *struct {
				Positions int `json:"positions"`
			} `json:"agreement"`
			Scenario struct {
				Kind string `json:"kind"`
			} `json:"scenario"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	// text: the exact run for comparison, then the threshold run; forward.
	if len(report.Results) != 3 {
		t.Fatalf("%d results, want 3:\n%s", len(report.Results), out)
	}
	text, exact := report.Results[1], report.Results[0]
	if exact.Mode != "exact" || exact.Steps != 8 || text.Mode != "threshold 0.5" {
		t.Errorf("text results %+v and %+v, want exact decoding in 8 steps, then threshold 0.5", exact, text)
	}
	if text.Agreement == nil || text.Agreement.Positions != 16 {
		t.Errorf("threshold run agreement %+v, want 16 positions compared", text.Agreement)
	}
	if fwd := report.Results[2]; fwd.Scenario.Kind != "forward" || fwd.Steps != 2 || fwd.PeakGFLOPS != 50 {
		t.Errorf("forward result %+v, want 2 steps against the given peak of 50", fwd)
	}
	if data, err := os.ReadFile(plot); err != nil || !bytes.HasPrefix(data, []byte("<svg")) {
		t.Errorf("plot %s: %v, starts %.20q", plot, err, data)
	}
}

func TestBenchGoldenCasesTable(t *testing.T) {
	out, err := runBenchArgs(t, "--model", benchTinyModel, "--backend", "interp", "--stop-at-eos",
		"--cases", "../../testdata/upstream-tiny/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "case text/greedy-one-block: exact reproduces the golden ids") {
		t.Errorf("golden comparison output lacks the first text case:\n%s", out)
	}
	if !strings.Contains(out, "all 7 cases: 63 steps against 63 exact, 100.0% of 132 positions equal") {
		t.Errorf("golden comparison output lacks the totals line:\n%s", out)
	}
}

func TestBenchPrefixBlockCache(t *testing.T) {
	out, err := runBenchArgs(t, "--model", benchTinyModel, "--backend", "interp", "--block-cache=prefix", "--json",
		"--prompt-length", "12", "--gen-length", "16", "--block-length", "8", "--steps", "8", "--peak-gflops", "50")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Results []struct {
			Mode      string `json:"mode"`
			Agreement *struct {
				Positions int `json:"positions"`
			} `json:"agreement"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if len(report.Results) != 2 || report.Results[1].Mode != "prefix block cache" {
		t.Fatalf("results %+v, want exact decoding, then the prefix block cache", report.Results)
	}
	if a := report.Results[1].Agreement; a == nil || a.Positions != 16 {
		t.Errorf("prefix cache agreement %+v, want 16 positions compared", a)
	}
}

func TestBenchBlockCacheGoldenCases(t *testing.T) {
	out, err := runBenchArgs(t, "--model", benchTinyModel, "--backend", "interp", "--block-cache=prefix",
		"--cases", "../../testdata/upstream-tiny/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "exact reproduces the golden ids") != 7 || !strings.Contains(out, "all 7 cases:") {
		t.Errorf("block-cache golden comparison does not cover the 7 text and mmu cases:\n%s", out)
	}
}

func TestBenchBlockCacheSkipsForward(t *testing.T) {
	out, err := runBenchArgs(t, "--model", benchTinyModel, "--backend", "interp", "--block-cache", "--json",
		"--scenario", "forward", "--forward-runs", "2", "--prompt-length", "12", "--peak-gflops", "50")
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Results []struct {
			Mode      string           `json:"mode"`
			Agreement *json.RawMessage `json:"agreement"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out)
	}
	if len(report.Results) != 1 || report.Results[0].Mode != "exact" || report.Results[0].Agreement != nil {
		t.Errorf("forward with --block-cache gave %+v, want one exact result and no comparison", report.Results)
	}
}

func TestBenchStopAtEOSScenario(t *testing.T) {
	out, err := runBenchArgs(t, "--model", benchTinyModel, "--backend", "interp", "--stop-at-eos", "--compare-exact=false",
		"--prompt-length", "12", "--gen-length", "16", "--block-length", "8", "--steps", "8", "--peak-gflops", "50")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "stop at eos") {
		t.Errorf("table lacks the stop-at-eos row:\n%s", out)
	}
}

// TestBenchRunsABundle benchmarks an onnx bundle: the step's FLOPs come
// from the bundle's own weights, so they equal the checkpoint folder's.
func TestBenchRunsABundle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle")
	if code, _, stderr := run(t, "build", "--model", benchTinyModel, "--out", out, "--weights", "external"); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	flops := map[string]float64{}
	for _, model := range []string{benchTinyModel, out} {
		got, err := runBenchArgs(t, "--model", model, "--backend", "interp", "--scenario", "text",
			"--prompt-length", "12", "--gen-length", "16", "--block-length", "8", "--steps", "8", "--peak-gflops", "50", "--json")
		if err != nil {
			t.Fatalf("bench --model %s: %v", model, err)
		}
		var report struct {
			Results []struct {
				FLOPs float64 `json:"flops_per_step"`
			} `json:"results"`
		}
		if err := json.Unmarshal([]byte(got), &report); err != nil {
			t.Fatalf("--json output is not JSON: %v\n%s", err, got)
		}
		if len(report.Results) != 1 {
			t.Fatalf("bench --model %s: %d results, want 1", model, len(report.Results))
		}
		flops[model] = report.Results[0].FLOPs
	}
	if flops[out] == 0 {
		t.Errorf("the bundle's run reports no FLOPs per step")
	}
	if flops[out] != flops[benchTinyModel] {
		t.Errorf("FLOPs per step: %v from the bundle, %v from the checkpoint folder", flops[out], flops[benchTinyModel])
	}

	_, err := runBenchArgs(t, "--model", out, "--passes", "none", "--scenario", "text", "--steps", "8")
	if err == nil || !strings.Contains(err.Error(), "--passes none needs a checkpoint folder") {
		t.Errorf("--passes none with a bundle: got %v, want an error asking for a checkpoint folder", err)
	}
}
