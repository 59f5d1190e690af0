package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyFile copies src to dst, creating dst's folder.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBundleCarriesTokenizer builds a bundle from a checkpoint with a
// tokenizer and runs a text prompt from the bundle after the checkpoint's
// tokenizer is gone.
func TestBundleCarriesTokenizer(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	copyFile(t, filepath.Join(golden, "mmada", "config.json"), filepath.Join(ckpt, "config.json"))
	copyFile(t, filepath.Join(golden, "mmada", "model.safetensors"), filepath.Join(ckpt, "model.safetensors"))
	copyFile(t, "../../testdata/tiny-tokenizer/tokenizer.json", filepath.Join(ckpt, "tokenizer.json"))
	out := filepath.Join(dir, "bundle")
	if code, _, stderr := run(t, "build", "--model", ckpt, "--out", out, "--weights", "external"); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "tokenizer.json")); err != nil {
		t.Fatalf("the bundle has no tokenizer.json: %v", err)
	}

	if err := os.Remove(filepath.Join(ckpt, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "run", "text", "--model", out, "--backend", "interp", "--prompt", "hi",
		"--gen-length", "8", "--block-length", "8", "--steps", "2", "--json")
	if code != 0 {
		t.Fatalf("run text --prompt from the bundle: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, `"ids"`) {
		t.Errorf("stdout %q has no ids", stdout)
	}
}

// TestBundleWithoutItsCheckpoint moves a bundle's checkpoint away, then
// puts a checkpoint with other weights at the old path. Bundles read only
// their own files, so both kinds must give the ids they gave at first, on
// both backends.
func TestBundleWithoutItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	copyFile(t, filepath.Join(golden, "mmada", "config.json"), filepath.Join(ckpt, "config.json"))
	copyFile(t, filepath.Join(golden, "mmada", "model.safetensors"), filepath.Join(ckpt, "model.safetensors"))
	text := []string{"--prompt-ids", "1,2", "--gen-length", "8", "--block-length", "8", "--steps", "4", "--json"}
	runs := func(weights, backend string) []string {
		return append([]string{"run", "text", "--model", filepath.Join(dir, weights), "--backend", backend}, text...)
	}
	want := map[string]string{}
	for _, weights := range []string{"external", "inline"} {
		if code, _, stderr := run(t, "build", "--model", ckpt, "--out", filepath.Join(dir, weights), "--weights", weights); code != 0 {
			t.Fatalf("build --weights %s: exit %d: %s", weights, code, stderr)
		}
		for _, backend := range []string{"ort", "interp"} {
			code, stdout, stderr := run(t, runs(weights, backend)...)
			if code != 0 {
				t.Fatalf("%s bundle on %s: exit %d: %s", weights, backend, code, stderr)
			}
			want[weights+" "+backend] = stdout
		}
	}
	if err := os.Rename(ckpt, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for key, before := range want {
			weights, backend, _ := strings.Cut(key, " ")
			code, stdout, stderr := run(t, runs(weights, backend)...)
			if code != 0 {
				t.Fatalf("%s bundle on %s, %s: exit %d: %s", weights, backend, when, code, stderr)
			}
			if stdout != before {
				t.Errorf("%s bundle on %s, %s: %s, at first %s", weights, backend, when, stdout, before)
			}
		}
	}
	check("checkpoint moved away")

	// Same names and shapes, other weights: the last 4 KB of data zeroed.
	other, err := os.ReadFile(filepath.Join(golden, "mmada", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	clear(other[len(other)-4096:])
	copyFile(t, filepath.Join(golden, "mmada", "config.json"), filepath.Join(ckpt, "config.json"))
	if err := os.WriteFile(filepath.Join(ckpt, "model.safetensors"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	check("another checkpoint at the old path")
}

// TestBundleMisuseMessages passes bundles where a checkpoint belongs, and
// damaged bundles: each message must name the path and the way out.
func TestBundleMisuseMessages(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle")
	if code, _, stderr := run(t, "build", "--model", filepath.Join(golden, "mmada"), "--out", out, "--weights", "external"); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	noManifest := filepath.Join(dir, "no-manifest")
	copyFile(t, filepath.Join(out, "transformer.onnx"), filepath.Join(noManifest, "transformer.onnx"))
	copyFile(t, filepath.Join(out, "config.json"), filepath.Join(noManifest, "config.json"))
	noModel := filepath.Join(dir, "no-model")
	for _, name := range []string{"config.json", "manifest.mmdb", "weights/model.safetensors"} {
		copyFile(t, filepath.Join(out, name), filepath.Join(noModel, name))
	}
	text := []string{"--prompt-ids", "1,2", "--gen-length", "8", "--block-length", "8", "--steps", "2"}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"build from a bundle", []string{"build", "--model", out, "--out", filepath.Join(dir, "again")}, []string{out + " is a bundle", "mmadac inspect"}},
		{"ir of a bundle", []string{"ir", "--model", out, "--stats"}, []string{out + " is a bundle"}},
		{"missing model", append([]string{"run", "text", "--model", filepath.Join(dir, "nope")}, text...), []string{"nope does not exist", "checkpoint folder"}},
		{"bundle without manifest", append([]string{"run", "text", "--model", noManifest}, text...), []string{"no manifest.mmdb", "build it again"}},
		{"bundle without its ONNX file", append([]string{"run", "text", "--model", noModel, "--backend", "ort"}, text...), []string{"transformer.onnx", "build the bundle again"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code == 0 {
				t.Fatal("exit 0")
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "again")); err == nil {
		t.Error("the failed build left its output folder behind")
	}
}
