package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

const golden = "../../testdata/upstream-tiny"

// run executes the command line in-process and returns the exit code,
// stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestRunTextGoldenRequests(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(golden, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"interp", "ort"} {
		for i, raw := range doc.Cases {
			var c struct {
				Kind        string    `json:"kind"`
				Name        string    `json:"name"`
				ExpectedIDs [][]int64 `json:"expected_ids"`
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			if c.Kind != "text" && c.Kind != "mmu" {
				continue
			}
			// The request sits next to the noise files, so a relative
			// noise path resolves against the request's folder.
			req := filepath.Join(golden, ".request-test-"+backend+"-"+c.Name+".json")
			if err := os.WriteFile(req, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(req)
			code, stdout, stderr := run(t, "run", "text", "--model", filepath.Join(golden, "mmada"), "--request", req, "--json", "--backend", backend)
			if code != 0 {
				t.Fatalf("case %d %s on %s: exit %d: %s", i, c.Name, backend, code, stderr)
			}
			var got struct {
				IDs [][]int64 `json:"ids"`
			}
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("%s: stdout is not JSON: %q", c.Name, stdout)
			}
			if !equal2(got.IDs, c.ExpectedIDs) {
				t.Errorf("%s on %s: got %v, want %v", c.Name, backend, got.IDs, c.ExpectedIDs)
			}
			if !strings.Contains(stderr, "tokens/s") {
				t.Errorf("%s: no progress on stderr: %q", c.Name, stderr)
			}
		}
	}
}

func equal2(a, b [][]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}

func TestForwardCommandMatchesGolden(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.safetensors")
	code, _, stderr := run(t, "forward", "--model", filepath.Join(golden, "mmada"),
		"--inputs", filepath.Join(golden, "forward-plain.safetensors"), "--outputs", out, "--backend", "interp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := frontend.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := frontend.ReadSafetensors(filepath.Join(golden, "forward-plain.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	g, w := got["logits"].F32(), want["logits"].F32()
	for i := range w {
		if d := g[i] - w[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("logit %d: got %v, want %v", i, g[i], w[i])
		}
	}
}

func TestBuildWritesBundle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle")
	code, stdout, stderr := run(t, "build", "--model", filepath.Join(golden, "mmada"), "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"transformer.onnx", "config.json", "manifest.mmdb"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("bundle lacks %s: %v", f, err)
		}
	}
	if !strings.Contains(stdout, "transformer.onnx") {
		t.Errorf("stdout does not name the model file: %q", stdout)
	}
	code, stdout, stderr = run(t, "run", "text", "--model", out, "--prompt-ids", "1,2,3", "--gen-length", "8", "--steps", "4", "--block-length", "4", "--json")
	if code != 0 {
		t.Fatalf("run on the bundle: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, `{"ids":[[1,2,3,`) {
		t.Errorf("unexpected output %q", stdout)
	}
}

func TestIRCommandPrintsGraph(t *testing.T) {
	code, stdout, stderr := run(t, "ir", "--model", filepath.Join(golden, "mmada"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"graph @transformer", "input %input_ids : i64[batch,seq]", "param %model.transformer.wte.weight : f32[320,64]", "output logits ="} {
		if !strings.Contains(stdout, want) {
			t.Errorf("IR lacks %q", want)
		}
	}
}

// TestBadInput runs command lines that must fail with a clear message and
// leave no output file.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(golden, "mmada")
	badConfig := filepath.Join(dir, "alibi")
	copyDir(t, model, badConfig)
	cfg, _ := os.ReadFile(filepath.Join(model, "config.json"))
	os.WriteFile(filepath.Join(badConfig, "config.json"), bytes.Replace(cfg, []byte(`"alibi": false`), []byte(`"alibi": true`), 1), 0o644)

	missing := filepath.Join(dir, "missing-tensor")
	copyDir(t, model, missing)
	ts := readAll(t, filepath.Join(model, "model.safetensors"))
	delete(ts, "model.transformer.blocks.1.up_proj.weight")
	writeAll(t, filepath.Join(missing, "model.safetensors"), ts)

	shape := filepath.Join(dir, "wrong-shape")
	copyDir(t, model, shape)
	ts = readAll(t, filepath.Join(model, "model.safetensors"))
	ts["model.transformer.ln_f.weight"] = ir.NewTensor(ir.F32, 63)
	writeAll(t, filepath.Join(shape, "model.safetensors"), ts)

	truncated := filepath.Join(dir, "truncated")
	copyDir(t, model, truncated)
	raw, _ := os.ReadFile(filepath.Join(model, "model.safetensors"))
	os.WriteFile(filepath.Join(truncated, "model.safetensors"), raw[:len(raw)/2], 0o644)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"config the model cannot honour", []string{"build", "--model", badConfig, "--out", filepath.Join(dir, "o1")}, "alibi"},
		{"missing tensor", []string{"build", "--model", missing, "--out", filepath.Join(dir, "o2")}, "model.transformer.blocks.1.up_proj.weight"},
		{"wrong shape", []string{"build", "--model", shape, "--out", filepath.Join(dir, "o3")}, "[63]"},
		{"truncated safetensors", []string{"build", "--model", truncated, "--out", filepath.Join(dir, "o4")}, "model.safetensors"},
		{"prompt id outside vocabulary", []string{"run", "text", "--model", model, "--prompt-ids", "1,999", "--backend", "interp"}, "999"},
		{"gen length not a multiple of block length", []string{"run", "text", "--model", model, "--prompt-ids", "1", "--gen-length", "10", "--block-length", "4", "--backend", "interp"}, "gen_length 10 is not a multiple of block_length 4"},
		{"steps not divisible by blocks", []string{"run", "text", "--model", model, "--prompt-ids", "1", "--gen-length", "8", "--block-length", "4", "--steps", "3", "--backend", "interp"}, "steps 3 is not divisible by the number of blocks 2"},
		{"unreadable request", []string{"run", "text", "--model", model, "--request", filepath.Join(dir, "nope.json")}, "cannot read request file"},
		{"both prompt forms", []string{"run", "text", "--prompt-ids", "1", "--request", "x.json"}, "exactly one of"},
		{"bad prompt ids", []string{"run", "text", "--model", model, "--prompt-ids", "1,x"}, `"x" is not an integer`},
		{"unknown backend", []string{"run", "text", "--model", model, "--prompt-ids", "1", "--backend", "gpu"}, `unknown backend "gpu"`},
		{"unknown block-cache mode", []string{"run", "text", "--model", model, "--prompt-ids", "1", "--block-cache=suffix"}, "--block-cache=suffix: unknown mode"},
		{"block-cache mode after a space", []string{"run", "text", "--model", model, "--prompt-ids", "1", "--block-cache", "prefix"}, "--block-cache=prefix"},
		{"text prompt without a tokenizer", []string{"run", "text", "--model", model, "--prompt", "hi"}, "--tokenizer FILE"},
		{"missing model folder", []string{"build", "--model", filepath.Join(dir, "none"), "--out", filepath.Join(dir, "o5")}, "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, stdout %q", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.want)
			}
		})
	}
	for _, o := range []string{"o1", "o2", "o3", "o4", "o5"} {
		if _, err := os.Stat(filepath.Join(dir, o)); err == nil {
			t.Errorf("a failed build left %s behind", o)
		}
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, path string) map[string]*ir.Tensor {
	t.Helper()
	ts, err := frontend.ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func writeAll(t *testing.T, path string, ts map[string]*ir.Tensor) {
	t.Helper()
	if err := frontend.WriteSafetensors(path, ts); err != nil {
		t.Fatal(err)
	}
}

func TestRunTextWithPrompt(t *testing.T) {
	code, stdout, stderr := run(t, "run", "text", "--model", filepath.Join(golden, "mmada"),
		"--tokenizer", "../../testdata/tiny-tokenizer/tokenizer.json", "--prompt", "What is in the box?",
		"--gen-length", "16", "--steps", "8", "--block-length", "8", "--json", "--backend", "interp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got struct {
		IDs  [][]int64 `json:"ids"`
		Text []string  `json:"text"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not JSON: %q", stdout)
	}
	// BOS, the user header, "\n", the text, eot_id, the assistant header.
	want := []int64{240, 251}
	if len(got.IDs) != 1 || got.IDs[0][0] != want[0] || got.IDs[0][1] != want[1] {
		t.Errorf("prompt does not start with BOS and the header: %v", got.IDs)
	}
	// 2 + "user" (4) + 1 + "\n" + 19 characters + eot_id + 1 + "assistant" (9) + 1 + "\n" = 40.
	if len(got.IDs[0]) != 40+16 {
		t.Errorf("sequence has %d ids, want 40 prompt ids and 16 generated", len(got.IDs[0]))
	}
	if len(got.Text) != 1 {
		t.Errorf("want one decoded answer, got %v", got.Text)
	}
	if !strings.Contains(stderr, "░") {
		t.Errorf("stderr shows no masked placeholders while streaming: %q", stderr)
	}
}

func TestRunTextPromptWithoutTokenizer(t *testing.T) {
	code, _, stderr := run(t, "run", "text", "--model", filepath.Join(golden, "mmada"), "--prompt", "hi")
	if code == 0 || !strings.Contains(stderr, "--prompt-ids") {
		t.Errorf("exit %d, stderr %q: want an error pointing to --prompt-ids", code, stderr)
	}
}

func TestTokenizeCommand(t *testing.T) {
	in := filepath.Join(t.TempDir(), "texts.json")
	os.WriteFile(in, []byte(`["Hello <|eot_id|> world!", ""]`), 0o644)
	code, stdout, stderr := run(t, "tokenize", "--tokenizer", "../../testdata/tiny-tokenizer", "--input", in, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `[{"ids":[72,101,108,108,111,32,254,32,119,111,114,108,100,33],"decoded":"Hello <|eot_id|> world!"},{"ids":[],"decoded":""}]` + "\n"
	if stdout != want {
		t.Errorf("got %s\nwant %s", stdout, want)
	}
}

func TestBundleStoresSchedulesAndChecksHashes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle")
	code, _, stderr := run(t, "build", "--model", filepath.Join(golden, "mmada-bf16"), "--out", out, "--weights", "external")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, stdout, stderr := run(t, "inspect", out)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"text_transfer_per_step", "t2i_mask_counts", "t2i_temperatures", "rope_table_length", "weight_hash"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %s:\n%s", want, stdout)
		}
	}
	code, _, stderr = run(t, "run", "text", "--model", out, "--prompt-ids", "1,2,3", "--gen-length", "8", "--steps", "4", "--block-length", "8", "--backend", "ort")
	if code != 0 {
		t.Fatalf("run on the bundle: exit %d: %s", code, stderr)
	}
	// A weight file that no longer matches the manifest is rejected.
	shard := filepath.Join(out, "weights", "model-00001-of-00002.safetensors")
	data, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(shard) // a hard link: replace it rather than write through
	data[20] ^= 1
	os.WriteFile(shard, data, 0o644)
	code, _, stderr = run(t, "run", "text", "--model", out, "--prompt-ids", "1,2,3", "--gen-length", "8", "--steps", "4", "--block-length", "8")
	if code == 0 || !strings.Contains(stderr, "do not match the manifest") {
		t.Errorf("exit %d, stderr %q: want a hash mismatch", code, stderr)
	}
}

func TestFailedBuildKeepsExistingBundle(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle")
	model := filepath.Join(golden, "mmada")
	if code, _, stderr := run(t, "build", "--model", model, "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	before, err := os.ReadFile(filepath.Join(out, "transformer.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "build", "--model", model, "--out", out, "--passes", "none", "--gen-length", "10", "--block-length", "4")
	if code == 0 || !strings.Contains(stderr, "gen_length 10") {
		t.Fatalf("exit %d, stderr %q: want the schedule rejected", code, stderr)
	}
	after, err := os.ReadFile(filepath.Join(out, "transformer.onnx"))
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the failed build changed the existing bundle")
	}
	if code, _, stderr := run(t, "run", "text", "--model", out, "--prompt-ids", "1,2", "--gen-length", "4", "--steps", "4", "--block-length", "4", "--backend", "ort"); code != 0 {
		t.Errorf("the bundle no longer runs: %s", stderr)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if code, _, _ := run(t, "build", "--model", model, "--out", fresh, "--steps", "0"); code == 0 {
		t.Fatal("steps 0 was accepted")
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Errorf("a failed build left %s behind", fresh)
	}
	mine := t.TempDir()
	os.WriteFile(filepath.Join(mine, "notes.txt"), []byte("keep"), 0o644)
	if code, _, stderr := run(t, "build", "--model", model, "--out", mine); code == 0 || !strings.Contains(stderr, "not empty") {
		t.Errorf("exit %d, stderr %q: want a refusal to replace a folder that is not a bundle", code, stderr)
	}
}
