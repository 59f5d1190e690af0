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

// TestBundleWithoutItsCheckpoint moves a bundle's checkpoint away. Every
// backend must name the missing folder and the way to fix it.
func TestBundleWithoutItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ckpt")
	copyFile(t, filepath.Join(golden, "mmada", "config.json"), filepath.Join(ckpt, "config.json"))
	copyFile(t, filepath.Join(golden, "mmada", "model.safetensors"), filepath.Join(ckpt, "model.safetensors"))
	out := filepath.Join(dir, "bundle")
	if code, _, stderr := run(t, "build", "--model", ckpt, "--out", out, "--weights", "external"); code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	if err := os.Rename(ckpt, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	for _, backend := range []string{"ort", "interp"} {
		code, _, stderr := run(t, "run", "text", "--model", out, "--backend", backend, "--prompt-ids", "1,2",
			"--gen-length", "8", "--block-length", "8", "--steps", "2")
		if code == 0 {
			t.Fatalf("%s: exit 0 without the checkpoint", backend)
		}
		if !strings.Contains(stderr, ckpt+", which is missing") {
			t.Errorf("%s: stderr %q does not name the missing checkpoint", backend, stderr)
		}
		if !strings.Contains(stderr, "build the bundle again") {
			t.Errorf("%s: stderr %q does not say what to do", backend, stderr)
		}
	}
}
