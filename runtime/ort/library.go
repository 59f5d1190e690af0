package ort

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// LibraryEnv names the environment variable that overrides where the ONNX
// Runtime shared library is loaded from.
const LibraryEnv = "MMADAC_ORT_LIB"

// defaultLibraryInCache is the library's path inside the cache directory
// after scripts/setup.sh. The onnxruntime-node npm package (version 1.30.0
// is the one tested) ships the Linux x64 build there.
const defaultLibraryInCache = "npm/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"

// installHint ends every load error with the ways to get the library.
const installHint = `install ONNX Runtime with "bash scripts/setup.sh", or set ` + LibraryEnv +
	` to the path of an existing libonnxruntime.so`

// ErrLibraryNotFound is returned (wrapped) by LibraryPath and Init when the
// shared library file does not exist.
var ErrLibraryNotFound = errors.New("ONNX Runtime shared library not found")

// LibraryPath returns the path of the ONNX Runtime shared library that Init
// loads: the value of MMADAC_ORT_LIB when it is set, otherwise the file that
// scripts/setup.sh installs under ${MMADAC_CACHE:-$HOME/.cache/mmadac}.
// The error wraps ErrLibraryNotFound when that file does not exist; the
// path is returned with it so that callers can report where they looked.
//
// A MMADAC_ORT_LIB value without a slash (such as "libonnxruntime.so.1") is
// returned unchecked, because the dynamic loader then searches its own
// library path for it.
func LibraryPath() (string, error) {
	return libraryPath(os.Getenv, os.UserHomeDir, fileExists)
}

// libraryPath is LibraryPath with its environment passed in, for tests.
func libraryPath(getenv func(string) string, home func() (string, error), exists func(string) bool) (string, error) {
	if p := getenv(LibraryEnv); p != "" {
		if !strings.Contains(p, "/") {
			return p, nil
		}
		if !exists(p) {
			return p, fmt.Errorf("%w at %s (the path %s names); %s", ErrLibraryNotFound, p, LibraryEnv, installHint)
		}
		return p, nil
	}

	cache := getenv("MMADAC_CACHE")
	if cache == "" {
		h, err := home()
		if err != nil {
			return "", fmt.Errorf("%w: neither %s nor MMADAC_CACHE is set and the home directory is unknown (%v); %s",
				ErrLibraryNotFound, LibraryEnv, err, installHint)
		}
		cache = filepath.Join(h, ".cache", "mmadac")
	}
	p := filepath.Join(cache, defaultLibraryInCache)
	if !exists(p) {
		return p, fmt.Errorf("%w at %s; %s", ErrLibraryNotFound, p, installHint)
	}
	return p, nil
}

func fileExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

var (
	initOnce sync.Once
	initErr  error
)

// Init loads the ONNX Runtime shared library and creates the process-wide
// ONNX Runtime environment. Only the first call does the work, and later
// calls return the same result. A failure is therefore permanent for the
// process, which could not load the library a second time anyway.
// NewSession and NewSessionFromBytes call Init themselves.
func Init() error {
	initOnce.Do(func() { initErr = initEnvironment() })
	return initErr
}

func initEnvironment() error {
	if ortgo.IsInitialized() {
		// Another package in this process already set up onnxruntime_go.
		return nil
	}
	path, err := LibraryPath()
	if err != nil {
		return err
	}
	ortgo.SetSharedLibraryPath(path)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); err != nil {
		return fmt.Errorf("load ONNX Runtime from %s: %w; %s", path, err, installHint)
	}
	slog.Debug("ort: ONNX Runtime loaded", "library", path, "version", ortgo.GetVersion())
	return nil
}
