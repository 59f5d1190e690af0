//go:build cgo

package acl

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeSource is the C source of the fake libascendcl.so.
const fakeSource = "testdata/fakeacl/fakeacl.c"

var (
	// fakeLibPath is the fake library built by TestMain, or "" when it could
	// not be built. fakeSkipReason then gives the reason.
	fakeLibPath    string
	fakeSkipReason string
)

// TestMain builds the fake library once for the whole test binary, because
// every test shares one loaded copy anyway: dlopen returns the same handle
// for the same file.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakeacl")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeLibPath, fakeSkipReason = buildFake(dir, "libascendcl.so")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildFake compiles the fake into dir/name with extra gcc flags. It
// returns the path, or "" and the reason when gcc is missing or fails.
func buildFake(dir, name string, flags ...string) (string, string) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", "gcc not found on PATH; the fake libascendcl.so cannot be built"
	}
	out := filepath.Join(dir, name)
	args := append([]string{"-shared", "-fPIC", "-Wall", "-o", out}, flags...)
	args = append(args, fakeSource, "-lpthread")
	if msg, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		return "", fmt.Sprintf("gcc %s failed: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return out, ""
}

// fake is one test's view of the fake library: its log and state files.
type fake struct {
	t     *testing.T
	lib   *Lib
	dir   string
	log   string
	state string
	// models counts the model files written so far.
	models int
}

// newFake loads the fake library and points its log and state files into a
// fresh temporary directory. Failure injection starts switched off.
func newFake(t *testing.T) *fake {
	t.Helper()
	if fakeLibPath == "" {
		t.Skip(fakeSkipReason)
	}
	dir := t.TempDir()
	f := &fake{t: t, dir: dir, log: filepath.Join(dir, "calls.log"), state: filepath.Join(dir, "state.txt")}
	t.Setenv("FAKEACL_LOG", f.log)
	t.Setenv("FAKEACL_STATE", f.state)
	t.Setenv("FAKEACL_FAIL", "")
	t.Setenv("FAKEACL_DEVICES", "2")
	t.Setenv("FAKEACL_PREINIT", "")
	lib, err := Load(fakeLibPath)
	if err != nil {
		t.Fatalf("Load(%s): %v", fakeLibPath, err)
	}
	f.lib = lib
	return f
}

// in returns a copy of f that reports to t, for use inside a subtest.
func (f *fake) in(t *testing.T) *fake {
	sub := *f
	sub.t = t
	return &sub
}

// model writes a fake model description and returns its path.
func (f *fake) model(text string) string {
	f.t.Helper()
	f.models++
	path := filepath.Join(f.dir, fmt.Sprintf("model%d.om", f.models))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return path
}

// failAt makes the nth call of name fail with code; nth 0 fails every call.
func (f *fake) failAt(name string, code, nth int) {
	f.t.Setenv("FAKEACL_FAIL", fmt.Sprintf("%s:%d:%d", name, code, nth))
}

// noFailures switches failure injection off.
func (f *fake) noFailures() { f.t.Setenv("FAKEACL_FAIL", "") }

// lines returns the call log, one entry per call.
func (f *fake) lines() []string {
	f.t.Helper()
	data, err := os.ReadFile(f.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	if len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// calls returns the function names of the call log, without failure marks
// and details.
func (f *fake) calls() []string {
	var names []string
	for _, line := range f.lines() {
		names = append(names, callName(line))
	}
	return names
}

// clearLog empties the call log so that a test can look at one phase.
func (f *fake) clearLog() {
	f.t.Helper()
	if err := os.WriteFile(f.log, nil, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func callName(line string) string {
	if i := strings.IndexAny(line, "! "); i >= 0 {
		return line[:i]
	}
	return line
}

// live returns the fake's counts of live resources.
func (f *fake) live() map[string]int {
	f.t.Helper()
	data, err := os.ReadFile(f.state)
	if err != nil {
		f.t.Fatalf("read fake state: %v", err)
	}
	counts := map[string]int{}
	for _, field := range strings.Fields(string(data)) {
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			f.t.Fatalf("bad state field %q in %q", field, data)
		}
		n, err := strconv.Atoi(value)
		if err != nil {
			f.t.Fatalf("bad state field %q in %q", field, data)
		}
		counts[key] = n
	}
	return counts
}

// assertNothingLive fails the test when the fake still holds a resource.
func (f *fake) assertNothingLive() {
	f.t.Helper()
	for kind, n := range f.live() {
		if n != 0 {
			f.t.Errorf("%d %s still live after teardown; state %v", n, kind, f.live())
		}
	}
}

// open opens model text on device 0 and registers Close as cleanup.
func (f *fake) open(text string) *Session {
	f.t.Helper()
	s, err := f.lib.Open(f.model(text), 0)
	if err != nil {
		f.t.Fatalf("Open: %v", err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// Model descriptions shared by several tests.
const (
	staticModel = `
input x FLOAT 2,3
output y FLOAT 2,3
`
	// gearModel has one dynamic input and one static one. Its gears list
	// the dims of every input in model order: [1 4 4] and [1 8 4].
	gearModel = `
input ids INT64 1,-1
input scale FLOAT 4
output out_ids INT64 1,-1
output out_scale FLOAT 4
gear 4
gear 8
`
)
