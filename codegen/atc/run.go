package atc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mmadac/mmadac/codegen/om"
)

// ErrNotFound reports that no atc executable was found.
var ErrNotFound = errors.New("atc not found")

// Result describes a successful ATC run.
type Result struct {
	// OMPath is the absolute path of the OM file ATC wrote.
	OMPath string
	// Info is the parsed header and partition table of that file.
	Info *om.Info
	// ATC is the executable that ran, Args its arguments and WorkDir the
	// directory it ran in.
	ATC     string
	Args    []string
	WorkDir string
	// Output is the text ATC wrote to stdout and stderr (the last MiB when
	// longer).
	Output string
	// Warnings are the W-coded reports in the output.
	Warnings []Report
	// Duration is the wall time of the ATC process.
	Duration time.Duration
}

// maxOutput bounds the output kept in memory. ATC at --log=debug with
// ASCEND_SLOG_PRINT_TO_STDOUT=1 prints a lot, and its error reports come last.
const maxOutput = 1 << 20

// waitDelay bounds the wait for output pipes after the process was killed.
const waitDelay = 2 * time.Second

// Find returns the absolute path of the atc executable. An explicit value
// with a path separator is used as given, and one without is looked up on
// PATH. An empty value looks up "atc" on PATH. The error wraps ErrNotFound
// and explains how to make ATC available.
func Find(explicit string) (string, error) {
	name := withDefault(explicit, "atc")
	if !strings.ContainsRune(name, filepath.Separator) && !strings.ContainsRune(name, '/') {
		path, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w: no %q on PATH; load the CANN environment (source .../ascend-toolkit/set_env.sh), "+
				"pass the path of atc, or run the printed command on a machine with CANN", ErrNotFound, name)
		}
		return filepath.Abs(path)
	}

	st, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%w: %s does not exist; check the path or leave it empty to search PATH", ErrNotFound, name)
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrNotFound, err)
	case st.IsDir():
		return "", fmt.Errorf("%w: %s is a directory; give the path of the atc executable inside it (usually bin/atc)", ErrNotFound, name)
	case st.Mode().Perm()&0o111 == 0:
		return "", fmt.Errorf("%w: %s is not executable (mode %s); fix its permissions", ErrNotFound, name, st.Mode().Perm())
	}
	return filepath.Abs(name)
}

// Run converts o.Model to an OM file with ATC. It runs ATC in the working
// directory (see Options.WorkDir) with o.Timeout, removes a previous
// <Output>.om first so that a stale file cannot pass for a new one, and
// checks afterwards that ATC wrote an OM file that om.Inspect accepts.
//
// A failed, timed-out or canceled run returns an *Error; invalid options and
// a missing atc or model return other errors.
func Run(ctx context.Context, o Options) (*Result, error) {
	args, err := o.Args()
	if err != nil {
		return nil, err
	}
	atcPath, err := Find(o.ATC)
	if err != nil {
		return nil, err
	}
	workDir, err := o.workDir()
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(workDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("ATC working directory %s is not a directory (%v); set WorkDir to an existing directory", workDir, err)
	}
	if _, err := os.Stat(o.Model); err != nil {
		return nil, fmt.Errorf("ONNX model for ATC: %w", err)
	}
	outputBase, err := filepath.Abs(o.Output)
	if err != nil {
		return nil, fmt.Errorf("resolve ATC output %q: %w", o.Output, err)
	}
	if err := prepareOutput(outputBase); err != nil {
		return nil, err
	}
	if soc, _ := LookupSoC(o.SoC); soc.Note != "" {
		slog.Warn("atc: check the SoC version", "soc", o.SoC, "note", soc.Note)
	}

	runCtx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}

	output := &tailBuffer{max: maxOutput}
	cmd := exec.CommandContext(runCtx, atcPath, args...)
	cmd.Dir = workDir
	cmd.Stdout = output
	cmd.Stderr = output
	cmd.WaitDelay = waitDelay
	killProcessGroupOnCancel(cmd)

	slog.Info("atc: converting", "model", o.Model, "soc", o.SoC, "workdir", workDir, "timeout", o.Timeout)
	start := time.Now()
	runErr := cmd.Run()
	duration := time.Since(start)

	if runErr != nil {
		exitCode := -1
		var exitErr *exec.ExitError
		if errors.As(runErr, &exitErr) {
			exitCode = exitErr.ExitCode()
		}
		cause := runErr
		if ctxErr := runCtx.Err(); ctxErr != nil {
			cause = ctxErr
		}
		e := newRunError(output.String(), exitCode, cause)
		if errors.Is(cause, context.DeadlineExceeded) && ctx.Err() == nil {
			e.Message = fmt.Sprintf("no result within the %v timeout; raise Options.Timeout (the last output line was %q)", o.Timeout, lastLine(output.String()))
		}
		return nil, e
	}

	omPath, err := findOM(outputBase, start)
	if err != nil {
		return nil, &Error{Message: err.Error(), Output: output.String(), ExitCode: 0, Err: err}
	}
	info, err := om.Inspect(omPath)
	if err != nil {
		return nil, &Error{Message: fmt.Sprintf("wrote an invalid OM file: %v", err),
			Output: output.String(), ExitCode: 0, Err: err}
	}

	_, warnings, _ := parseOutput(output.String())
	slog.Info("atc: done", "om", omPath, "bytes", info.FileSize, "partitions", len(info.Partitions),
		"warnings", len(warnings), "duration", duration.Round(time.Millisecond))
	return &Result{
		OMPath:   omPath,
		Info:     info,
		ATC:      atcPath,
		Args:     args,
		WorkDir:  workDir,
		Output:   output.String(),
		Warnings: warnings,
		Duration: duration,
	}, nil
}

// prepareOutput creates the output directory and removes a previous OM file
// at the output path.
func prepareOutput(outputBase string) error {
	if err := os.MkdirAll(filepath.Dir(outputBase), 0o755); err != nil {
		return fmt.Errorf("create ATC output directory: %w", err)
	}
	previous := outputBase + ".om"
	if err := os.Remove(previous); err == nil {
		slog.Info("atc: removed the previous OM file", "path", previous)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the previous OM file: %w", err)
	}
	return nil
}

// findOM returns <outputBase>.om, or else the one <outputBase>_*.om written
// since start. ATC appends the OS and architecture to the name when
// --host_env_os/--host_env_cpu are given.
func findOM(outputBase string, start time.Time) (string, error) {
	path := outputBase + ".om"
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}

	dir, prefix := filepath.Dir(outputBase), filepath.Base(outputBase)+"_"
	entries, _ := os.ReadDir(dir)
	var fresh []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".om") || !e.Type().IsRegular() {
			continue
		}
		// Whole seconds, because some file systems store coarse times.
		if st, err := e.Info(); err == nil && !st.ModTime().Before(start.Truncate(time.Second)) {
			fresh = append(fresh, filepath.Join(dir, name))
		}
	}
	switch len(fresh) {
	case 1:
		return fresh[0], nil
	case 0:
		return "", fmt.Errorf("wrote no OM file at %s", path)
	}
	return "", fmt.Errorf("wrote %d OM files (%s); expected one", len(fresh), strings.Join(fresh, ", "))
}

// tailBuffer keeps the last max bytes written to it. It lets the buffer grow
// to twice max before dropping the front, so that a stream of small writes
// costs amortized constant time per byte.
type tailBuffer struct {
	max     int
	buf     []byte
	dropped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.dropped = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if len(t.buf) > t.max {
		return "[earlier output dropped]\n" + string(t.buf[len(t.buf)-t.max:])
	}
	if t.dropped {
		return "[earlier output dropped]\n" + string(t.buf)
	}
	return string(t.buf)
}
