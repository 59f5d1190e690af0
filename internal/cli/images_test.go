package cli

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// goldenCases returns the raw case objects of cases.json of one kind.
func goldenCases(t *testing.T, kind string) []map[string]json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(golden, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []map[string]json.RawMessage `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []map[string]json.RawMessage
	for _, c := range doc.Cases {
		var k string
		json.Unmarshal(c["kind"], &k)
		if k == kind {
			out = append(out, c)
		}
	}
	return out
}

func TestRunT2IGoldenRequests(t *testing.T) {
	for _, backend := range []string{"interp", "ort"} {
		for _, c := range goldenCases(t, "t2i") {
			var name, imageFile string
			var want [][]int64
			json.Unmarshal(c["name"], &name)
			json.Unmarshal(c["expected_codes"], &want)
			json.Unmarshal(c["image"], &imageFile)
			raw, _ := json.Marshal(c)
			req := filepath.Join(golden, ".request-t2i-"+backend+"-"+name+".json")
			if err := os.WriteFile(req, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(req)
			out := t.TempDir()
			code, stdout, stderr := run(t, "run", "t2i", "--model", filepath.Join(golden, "mmada"), "--vq-model", filepath.Join(golden, "magvit"),
				"--request", req, "--out-dir", out, "--json", "--backend", backend)
			if code != 0 {
				t.Fatalf("%s on %s: exit %d: %s", name, backend, code, stderr)
			}
			var got struct {
				Codes  [][]int64 `json:"codes"`
				Images []string  `json:"images"`
			}
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("stdout is not JSON: %q", stdout)
			}
			if !equal2(got.Codes, want) {
				t.Errorf("%s on %s: codes %v, want %v", name, backend, got.Codes, want)
			}
			dt, shape, pixels, err := frontend.ReadRawTensor(filepath.Join(golden, imageFile), "image_u8")
			if err != nil || dt != "U8" {
				t.Fatalf("reading the reference image: %v (dtype %s)", err, dt)
			}
			checkPNGs(t, got.Images, shape, pixels)
		}
	}
}

// checkPNGs compares written PNG files with a [B,H,W,3] uint8 reference.
func checkPNGs(t *testing.T, paths []string, shape []int64, want []byte) {
	t.Helper()
	h, w := int(shape[1]), int(shape[2])
	if len(paths) != int(shape[0]) {
		t.Fatalf("%d images written, want %d", len(paths), shape[0])
	}
	for b, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				base := ((b*h+y)*w + x) * 3
				if byte(r>>8) != want[base] || byte(g>>8) != want[base+1] || byte(bl>>8) != want[base+2] {
					t.Fatalf("%s pixel (%d,%d) = %d,%d,%d, want %v", p, x, y, r>>8, g>>8, bl>>8, want[base:base+3])
				}
			}
		}
	}
}

func TestRunMMUFromImage(t *testing.T) {
	c := goldenCases(t, "mmu")[0]
	var prompt, want [][]int64
	json.Unmarshal(c["prompt_ids"], &prompt)
	json.Unmarshal(c["expected_ids"], &want)
	// The golden prompt is [mmu, soi, 16 codes, eoi] + the chat ids.
	chat := prompt[0][19:]
	ids := make([]string, len(chat))
	for i, v := range chat {
		ids[i] = jsonNumber(v)
	}
	for _, backend := range []string{"interp", "ort"} {
		code, stdout, stderr := run(t, "run", "mmu", "--model", filepath.Join(golden, "mmada"), "--vq-model", filepath.Join(golden, "magvit"),
			"--image", "../../testdata/images/dog.png", "--prompt-ids", strings.Join(ids, ","),
			"--gen-length", "16", "--steps", "8", "--block-length", "8", "--json", "--backend", backend)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var got struct {
			IDs [][]int64 `json:"ids"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %q", stdout)
		}
		if !equal2(got.IDs, want) {
			t.Errorf("%s: got %v\nwant %v", backend, got.IDs, want)
		}
	}
}

func jsonNumber(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestForwardVQGraphs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "dec.safetensors")
	code, _, stderr := run(t, "forward", "--graph", "vq-decoder", "--model", filepath.Join(golden, "magvit"),
		"--inputs", filepath.Join(golden, "vq-decode.safetensors"), "--outputs", out, "--backend", "interp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := readAll(t, out)["pixels"].F32()
	want, _, err := frontend.ReadSafetensorsSkipping(filepath.Join(golden, "vq-decode.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range want["pixels"].F32() {
		if d := v - got[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("pixel %d: got %v, want %v", i, got[i], v)
		}
	}
	enc := filepath.Join(dir, "enc.safetensors")
	code, _, stderr = run(t, "forward", "--graph", "vq-encoder", "--model", filepath.Join(golden, "magvit"),
		"--image", "../../testdata/images/dog.png", "--resolution", "16", "--outputs", enc, "--backend", "interp")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantEnc := readAll(t, filepath.Join(golden, "vq-encode.safetensors"))
	gotCodes := readAll(t, enc)["codes"].I64()
	for i, v := range wantEnc["codes"].I64() {
		if gotCodes[i] != v {
			t.Fatalf("codes %v, want %v", gotCodes, wantEnc["codes"].I64())
		}
	}
}

func TestImageBadInput(t *testing.T) {
	dir := t.TempDir()
	vq := filepath.Join(golden, "magvit")
	notImage := filepath.Join(dir, "notes.png")
	os.WriteFile(notImage, []byte("not an image"), 0o644)
	outside := filepath.Join(dir, "outside.safetensors")
	writeAll(t, outside, map[string]*ir.Tensor{"codes": ir.FromI64([]int64{1, 2, 999, 4}, 1, 4)})
	nonSquare := filepath.Join(dir, "nonsquare.safetensors")
	writeAll(t, nonSquare, map[string]*ir.Tensor{"codes": ir.FromI64(make([]int64, 15), 1, 15)})
	noUncond := filepath.Join(dir, "nouncond.json")
	c := goldenCases(t, "t2i")[0]
	delete(c, "uncond_input_ids")
	delete(c, "uncond_attention_mask")
	delete(c, "noise")
	raw, _ := json.Marshal(c)
	os.WriteFile(noUncond, raw, 0o644)
	otherCodebook := textWithCodebook(t, dir, 32)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"undecodable image", []string{"forward", "--graph", "vq-encoder", "--model", vq, "--image", notImage, "--resolution", "16", "--outputs", filepath.Join(dir, "o1.safetensors")}, "notes.png"},
		{"resolution not divisible", []string{"forward", "--graph", "vq-encoder", "--model", vq, "--image", "../../testdata/images/dog.png", "--resolution", "15", "--outputs", filepath.Join(dir, "o2.safetensors")}, "multiple of 4"},
		{"codes outside the codebook", []string{"forward", "--graph", "vq-decoder", "--model", vq, "--inputs", outside, "--outputs", filepath.Join(dir, "o3.safetensors")}, "999"},
		{"non-square code count", []string{"forward", "--graph", "vq-decoder", "--model", vq, "--inputs", nonSquare, "--outputs", filepath.Join(dir, "o4.safetensors")}, "15"},
		{"guidance without unconditional prompt", []string{"run", "t2i", "--model", filepath.Join(golden, "mmada"), "--vq-model", vq, "--request", noUncond, "--out-dir", filepath.Join(dir, "o5")}, "uncond"},
		{"t2i without out-dir", []string{"run", "t2i", "--prompt-ids", "1,2"}, "--out-dir"},
		{"mmu without image", []string{"run", "mmu", "--prompt-ids", "1,2"}, "--image"},
		{"mmu with another codebook", []string{"run", "mmu", "--model", otherCodebook, "--vq-model", vq, "--image", "../../testdata/images/dog.png", "--prompt-ids", "1,2"}, "reads 32 image codes"},
		{"t2i with another codebook", []string{"run", "t2i", "--model", otherCodebook, "--vq-model", vq, "--prompt-ids", "1,2", "--out-dir", filepath.Join(dir, "o6")}, "reads 32 image codes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code == 0 {
				t.Fatal("exit 0")
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.want)
			}
		})
	}
	for _, o := range []string{"o1.safetensors", "o2.safetensors", "o3.safetensors", "o4.safetensors", "o5", "o6"} {
		if _, err := os.Stat(filepath.Join(dir, o)); err == nil {
			t.Errorf("a failed command left %s behind", o)
		}
	}
}

// textWithCodebook writes a copy of the golden text checkpoint under dir
// whose config declares size image codes, so that the golden MAGVIT-v2
// model no longer fits it.
func textWithCodebook(t *testing.T, dir string, size int) string {
	t.Helper()
	out := filepath.Join(dir, "text-codebook")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(golden, "mmada", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["codebook_size"] = size
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(out, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	weights, err := os.ReadFile(filepath.Join(golden, "mmada", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "model.safetensors"), weights, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestT2IFromBundleUsesFoldedSchedule builds a bundle whose t2i schedule
// matches a golden case and checks that the case still reproduces upstream
// when the sampler reads the folded temperatures.
func TestT2IFromBundleUsesFoldedSchedule(t *testing.T) {
	c := goldenCases(t, "t2i")[0]
	var name string
	var want [][]int64
	var params map[string]float64
	json.Unmarshal(c["name"], &name)
	json.Unmarshal(c["expected_codes"], &want)
	json.Unmarshal(c["params"], &params)
	out := filepath.Join(t.TempDir(), "bundle")
	code, _, stderr := run(t, "build", "--model", filepath.Join(golden, "mmada"), "--out", out,
		"--timesteps", jsonNumber(int64(params["timesteps"])), "--t2i-temperature", "1")
	if code != 0 {
		t.Fatalf("build: exit %d: %s", code, stderr)
	}
	raw, _ := json.Marshal(c)
	req := filepath.Join(golden, ".request-t2i-bundle-"+name+".json")
	os.WriteFile(req, raw, 0o644)
	defer os.Remove(req)
	for _, backend := range []string{"interp", "ort"} {
		code, stdout, stderr := run(t, "run", "t2i", "--model", out, "--vq-model", filepath.Join(golden, "magvit"),
			"--request", req, "--out-dir", t.TempDir(), "--json", "--backend", backend)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", backend, code, stderr)
		}
		var got struct {
			Codes [][]int64 `json:"codes"`
		}
		json.Unmarshal([]byte(stdout), &got)
		if !equal2(got.Codes, want) {
			t.Errorf("%s: codes %v, want %v", backend, got.Codes, want)
		}
	}
}
