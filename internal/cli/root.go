// Package cli holds the cobra commands of mmadac. Commands parse flags and
// print; the work happens in internal/engine and the packages it uses.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/internal/serve"
)

// DefaultModel is the small checkpoint that `mmadac run text` uses when
// --model is not given (relative to the repository root).
const DefaultModel = "testdata/upstream-tiny/mmada"

// usageError marks errors in the command line itself (exit code 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// Main runs the command line and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "mmadac: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:           "mmadac",
		Short:         "Compile MMaDA to ONNX and run its diffusion samplers",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log debug details to stderr")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newBuildCmd(), newRunCmd(), newForwardCmd(), newIRCmd(), newTokenizeCmd(), newBenchCmd(), newInspectCmd(), newCheckAscendCmd(), serve.NewCommand(), newDevCmd())
	return root
}

// exists reports whether a path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
