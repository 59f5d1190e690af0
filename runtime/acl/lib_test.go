//go:build cgo

package acl

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadMissingLibrary(t *testing.T) {
	_, err := Load(t.TempDir() + "/libascendcl.so")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Load = %v, want ErrUnavailable", err)
	}
	for _, want := range []string{"libascendcl.so", "set_env.sh", EnvLibrary} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadDefaultLibraryName(t *testing.T) {
	t.Setenv(EnvLibrary, "")
	lib, err := Load("")
	if err == nil {
		t.Skipf("a libascendcl.so is on the loader path (%s); the missing-library case cannot be tested here", lib.Path())
	}
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), `"libascendcl.so"`) {
		t.Errorf("Load(\"\") = %v, want ErrUnavailable naming libascendcl.so", err)
	}
}

func TestLoadFromEnvironment(t *testing.T) {
	if fakeLibPath == "" {
		t.Skip(fakeSkipReason)
	}
	t.Setenv(EnvLibrary, fakeLibPath)
	lib, err := Load("")
	if err != nil {
		t.Fatalf("Load with %s set: %v", EnvLibrary, err)
	}
	if lib.Path() != fakeLibPath {
		t.Errorf("Path() = %q, want %q", lib.Path(), fakeLibPath)
	}
	again, err := Load(fakeLibPath)
	if err != nil {
		t.Fatalf("second Load: %v", err)
	}
	if again != lib {
		t.Error("loading the same library twice returned two Libs; their init counts would disagree")
	}
}

func TestLoadMissingSymbol(t *testing.T) {
	if fakeLibPath == "" {
		t.Skip(fakeSkipReason)
	}
	path, reason := buildFake(t.TempDir(), "libascendcl.so", "-DFAKEACL_OMIT_EXECUTE")
	if path == "" {
		t.Fatal(reason)
	}
	_, err := Load(path)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Load = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "no symbol aclmdlExecute") {
		t.Errorf("error %q does not name the missing symbol aclmdlExecute", err)
	}
}
