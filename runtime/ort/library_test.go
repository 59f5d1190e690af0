package ort

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func fakeEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func homeAt(dir string) func() (string, error) {
	return func() (string, error) { return dir, nil }
}

func existsOnly(paths ...string) func(string) bool {
	return func(p string) bool {
		for _, q := range paths {
			if p == q {
				return true
			}
		}
		return false
	}
}

func TestLibraryPathFromEnv(t *testing.T) {
	env := fakeEnv(map[string]string{LibraryEnv: "/opt/ort/lib/libonnxruntime.so", "MMADAC_CACHE": "/cache"})
	got, err := libraryPath(env, homeAt("/home/u"), existsOnly("/opt/ort/lib/libonnxruntime.so"))
	if err != nil || got != "/opt/ort/lib/libonnxruntime.so" {
		t.Errorf("libraryPath = %q, %v; want the %s value", got, err, LibraryEnv)
	}
}

func TestLibraryPathFromEnvMissing(t *testing.T) {
	env := fakeEnv(map[string]string{LibraryEnv: "/opt/none.so"})
	got, err := libraryPath(env, homeAt("/home/u"), existsOnly())
	if !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("err = %v, want ErrLibraryNotFound", err)
	}
	if got != "/opt/none.so" {
		t.Errorf("path = %q, want the %s value", got, LibraryEnv)
	}
	for _, part := range []string{"/opt/none.so", LibraryEnv, "bash scripts/setup.sh"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not contain %q", err, part)
		}
	}
}

func TestLibraryPathBareName(t *testing.T) {
	env := fakeEnv(map[string]string{LibraryEnv: "libonnxruntime.so.1"})
	got, err := libraryPath(env, homeAt("/home/u"), existsOnly())
	if err != nil || got != "libonnxruntime.so.1" {
		t.Errorf("libraryPath = %q, %v; want the bare name passed to the loader unchecked", got, err)
	}
}

func TestLibraryPathCacheDir(t *testing.T) {
	want := filepath.Join("/cache", defaultLibraryInCache)
	got, err := libraryPath(fakeEnv(map[string]string{"MMADAC_CACHE": "/cache"}), homeAt("/home/u"), existsOnly(want))
	if err != nil || got != want {
		t.Errorf("libraryPath = %q, %v; want %q", got, err, want)
	}
}

func TestLibraryPathHomeDefault(t *testing.T) {
	want := filepath.Join("/home/u", ".cache", "mmadac", defaultLibraryInCache)
	got, err := libraryPath(fakeEnv(nil), homeAt("/home/u"), existsOnly(want))
	if err != nil || got != want {
		t.Errorf("libraryPath = %q, %v; want %q", got, err, want)
	}
}

func TestLibraryPathDefaultMissing(t *testing.T) {
	got, err := libraryPath(fakeEnv(nil), homeAt("/home/u"), existsOnly())
	if !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("err = %v, want ErrLibraryNotFound", err)
	}
	if !strings.Contains(err.Error(), got) || !strings.Contains(err.Error(), "bash scripts/setup.sh") {
		t.Errorf("error %q does not name %q and the setup script", err, got)
	}
}

func TestLibraryPathNoHome(t *testing.T) {
	noHome := func() (string, error) { return "", errors.New("$HOME is not defined") }
	_, err := libraryPath(fakeEnv(nil), noHome, existsOnly())
	if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "$HOME is not defined") {
		t.Errorf("err = %v, want ErrLibraryNotFound with the home directory error", err)
	}
}

// childModeEnv selects, in a re-executed test binary, which Init failure
// the child checks. Init runs once per process, so each failure needs a
// fresh process.
const childModeEnv = "MMADAC_ORT_TEST_CHILD"

// runInitChild re-runs the test named test in a subprocess with
// MMADAC_ORT_LIB set to lib and fails if the child fails.
func runInitChild(t *testing.T, test, mode, lib string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode, LibraryEnv+"="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("child process for %s failed (%v):\n%s", mode, err, out)
	}
}

// checkInitFails is the child side: Init must fail with an error that
// contains every part, repeat the same error, and make session creation
// fail with it too.
func checkInitFails(t *testing.T, parts ...string) error {
	t.Helper()
	err := Init()
	if err == nil {
		t.Fatal("Init succeeded with an unusable library")
	}
	for _, p := range append(parts, "bash scripts/setup.sh", LibraryEnv) {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Init error %q does not contain %q", err, p)
		}
	}
	if again := Init(); again != err {
		t.Errorf("second Init returned %v, want the first error again", again)
	}
	if _, serr := NewSessionFromBytes([]byte{0}, []string{"x"}, []string{"y"}, DefaultOptions()); serr != err {
		t.Errorf("NewSessionFromBytes returned %v, want the Init error", serr)
	}
	return err
}

func TestInitMissingLibrary(t *testing.T) {
	if os.Getenv(childModeEnv) == "missing" {
		err := checkInitFails(t, "not found")
		if !errors.Is(err, ErrLibraryNotFound) {
			t.Errorf("Init error %v does not wrap ErrLibraryNotFound", err)
		}
		return
	}
	runInitChild(t, "TestInitMissingLibrary", "missing", filepath.Join(t.TempDir(), "libonnxruntime.so.1"))
}

func TestInitNotALibrary(t *testing.T) {
	if os.Getenv(childModeEnv) == "not-a-library" {
		checkInitFails(t, "load ONNX Runtime from", "fake.so")
		return
	}
	fake := filepath.Join(t.TempDir(), "fake.so")
	if err := os.WriteFile(fake, []byte("this is not an ELF file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runInitChild(t, "TestInitNotALibrary", "not-a-library", fake)
}

func TestCgroupCPUQuota(t *testing.T) {
	cases := []struct {
		name   string
		files  map[string]string
		want   int
		wantOK bool
	}{
		{"v2 quota", map[string]string{cgroupV2CPUMax: "200000 100000\n"}, 2, true},
		{"v2 fractional quota rounds up", map[string]string{cgroupV2CPUMax: "150000 100000\n"}, 2, true},
		{"v2 no quota", map[string]string{cgroupV2CPUMax: "max 100000\n"}, 0, false},
		{"v2 malformed", map[string]string{cgroupV2CPUMax: "lots\n"}, 0, false},
		{"v1 quota", map[string]string{cgroupV1CPUQuota: "300000\n", cgroupV1CPUPeriod: "100000\n"}, 3, true},
		{"v1 no quota", map[string]string{cgroupV1CPUQuota: "-1\n", cgroupV1CPUPeriod: "100000\n"}, 0, false},
		{"no files", map[string]string{}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			read := func(p string) (string, error) {
				if s, ok := c.files[p]; ok {
					return s, nil
				}
				return "", os.ErrNotExist
			}
			got, ok := cgroupCPUQuota(read)
			if got != c.want || ok != c.wantOK {
				t.Errorf("cgroupCPUQuota = %d, %v; want %d, %v", got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestAvailableCPUsPositive(t *testing.T) {
	if n := AvailableCPUs(); n < 1 {
		t.Errorf("AvailableCPUs = %d, want at least 1", n)
	}
}
