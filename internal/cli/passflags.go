package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/passes"
)

// passFlags are the pass-manager flags shared by build and ir.
type passFlags struct {
	printAfter    []string
	printBefore   []string
	printAfterAll bool
	disable       []string
	dumpDir       string
	timePasses    bool
	pipeline      string
}

func (f *passFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.printAfter, "print-ir-after", nil, "print the IR to stderr after the named passes (comma-separated)")
	fl.StringSliceVar(&f.printBefore, "print-ir-before", nil, "print the IR to stderr before the named passes")
	fl.BoolVar(&f.printAfterAll, "print-ir-after-all", false, "print the IR to stderr after every pass")
	fl.StringSliceVar(&f.disable, "disable-pass", nil, "skip the named optional passes")
	fl.StringVar(&f.dumpDir, "dump-dir", "", "write the IR after each pass to numbered files in this folder")
	fl.BoolVar(&f.timePasses, "time-passes", false, "report each pass's run time to stderr as TSV")
	fl.StringVar(&f.pipeline, "passes", "default", "default: the target's pipeline; none: the unoptimised graph")
	cmd.Long = cmd.Short + "\n\n" + passes.Help()
}

func (f *passFlags) options(cmd *cobra.Command, target string) (passes.Options, error) {
	o := passes.Options{
		Target: target, Disable: f.disable, PrintAfter: f.printAfter, PrintBefore: f.printBefore,
		PrintAfterAll: f.printAfterAll, DumpDir: f.dumpDir, TimePasses: f.timePasses,
		Dump: cmd.ErrOrStderr(),
	}
	switch f.pipeline {
	case "default":
	case "none":
		o.None = true
	default:
		return o, usagef("--passes %q is not supported; use default or none", f.pipeline)
	}
	for _, n := range append(append(append([]string{}, f.disable...), f.printAfter...), f.printBefore...) {
		p, ok := passes.Registry[n]
		if !ok {
			return o, usagef("unknown pass %q; `mmadac ir --help` lists them", n)
		}
		if p.Required && contains(f.disable, n) {
			return o, usagef("--disable-pass: pass %s is required and cannot be disabled", n)
		}
	}
	if f.dumpDir != "" {
		if err := os.MkdirAll(f.dumpDir, 0o755); err != nil {
			return o, fmt.Errorf("--dump-dir: %w", err)
		}
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
