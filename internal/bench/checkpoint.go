package bench

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mmadac/mmadac/internal/engine"
)

// midSizeSeed seeds the random weights of the default benchmark model.
const midSizeSeed = 1

// MidSizeCheckpoint returns the folder of the default benchmark model (the
// mid-size config with random float32 weights, seed 1) under cacheDir,
// writing it first when it is missing. It writes into a temporary folder
// and renames it, so an interrupted write never leaves a partial model.
func MidSizeCheckpoint(cacheDir string) (string, error) {
	dir := filepath.Join(cacheDir, "bench", fmt.Sprintf("mid-size-seed%d", midSizeSeed))
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("benchmark model cache: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".mid-size-")
	if err != nil {
		return "", fmt.Errorf("benchmark model cache: %w", err)
	}
	slog.Info("bench: writing the mid-size random checkpoint", "dir", dir)
	if err := engine.WriteRandomCheckpoint(tmp, engine.MidSizeConfig(), midSizeSeed); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("writing the mid-size checkpoint: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("benchmark model cache: %w", err)
	}
	return dir, nil
}
