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

// TestBundleWithoutItsCheckpoint moves a bundle's checkpoint away. An
// external bundle indexes its own weights and must give the same ids as
// before on both backends. An inline bundle needs the checkpoint, and must
// name the missing folder and the way to fix it.
func TestBundleWithoutItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	copyFile(t, filepath.Join(golden, "mmada", "config.json"), filepath.Join(ckpt, "config.json"))
	copyFile(t, filepath.Join(golden, "mmada", "model.safetensors"), filepath.Join(ckpt, "model.safetensors"))
	text := []string{"--prompt-ids", "1,2", "--gen-length", "8", "--block-length", "8", "--steps", "4", "--json"}
	want := map[string]string{}
	for _, weights := range []string{"external", "inline"} {
		out := filepath.Join(dir, weights)
		if code, _, stderr := run(t, "build", "--model", ckpt, "--out", out, "--weights", weights); code != 0 {
			t.Fatalf("build --weights %s: exit %d: %s", weights, code, stderr)
		}
		for _, backend := range []string{"ort", "interp"} {
			code, stdout, stderr := run(t, append([]string{"run", "text", "--model", out, "--backend", backend}, text...)...)
			if code != 0 {
				t.Fatalf("%s bundle on %s, checkpoint in place: exit %d: %s", weights, backend, code, stderr)
			}
			want[weights+backend] = stdout
		}
	}
	if err := os.Rename(ckpt, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}

	for _, backend := range []string{"ort", "interp"} {
		code, stdout, stderr := run(t, append([]string{"run", "text", "--model", filepath.Join(dir, "external"), "--backend", backend}, text...)...)
		if code != 0 {
			t.Fatalf("external bundle on %s without its checkpoint: exit %d: %s", backend, code, stderr)
		}
		if stdout != want["external"+backend] {
			t.Errorf("external bundle on %s: %s without its checkpoint, %s with it", backend, stdout, want["external"+backend])
		}

		code, _, stderr = run(t, append([]string{"run", "text", "--model", filepath.Join(dir, "inline"), "--backend", backend}, text...)...)
		if code == 0 {
			t.Fatalf("inline bundle on %s: exit 0 without the checkpoint", backend)
		}
		if !strings.Contains(stderr, ckpt+", which is missing") {
			t.Errorf("inline bundle on %s: stderr %q does not name the missing checkpoint", backend, stderr)
		}
		if !strings.Contains(stderr, "build the bundle again") {
			t.Errorf("inline bundle on %s: stderr %q does not say what to do", backend, stderr)
		}
	}
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
