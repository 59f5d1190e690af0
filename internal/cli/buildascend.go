package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/internal/engine"
)

// ascendFlags are the flags of `mmadac build` that only the ascend target
// uses.
type ascendFlags struct {
	opts engine.AscendOptions
}

// ascendFlagNames lists the flags addAscendFlags registers.
var ascendFlagNames = []string{"soc", "atc", "seq-len", "batch", "precision", "atc-timeout"}

// addAscendFlags registers the ascend flags on the build command and
// returns the struct they fill.
func addAscendFlags(cmd *cobra.Command) *ascendFlags {
	f := &ascendFlags{}
	fl := cmd.Flags()
	fl.StringVar(&f.opts.SoC, "soc", engine.DefaultSoC, "ascend: ATC --soc_version, the chip the OM runs on (npu-smi info shows 910B3 for Ascend910B3)")
	fl.StringVar(&f.opts.ATC, "atc", "", "ascend: path of Huawei's atc (default: atc on PATH; without it the build prints the command to run)")
	fl.Int64SliceVar(&f.opts.SeqLens, "seq-len", nil, "ascend: sequence lengths; one gives static shapes, several (e.g. 256,512,1024) become ATC gears (default: the config's max_sequence_length)")
	fl.Int64Var(&f.opts.Batch, "batch", 1, "ascend: batch size the OM is compiled for (2 for classifier-free guidance)")
	fl.StringVar(&f.opts.Precision, "precision", engine.PrecisionF32, "ascend: f32 (float32 weights, ATC keeps the dtypes) or f16 (float16 weights and compute, softmax, RMSNorm statistics and head kept in float32)")
	fl.DurationVar(&f.opts.ATCTimeout, "atc-timeout", engine.DefaultATCTimeout, "ascend: time limit of the ATC run")
	return f
}

// checkTarget rejects ascend flags on another target, so that a flag the
// build would ignore is not silently dropped.
func (f *ascendFlags) checkTarget(cmd *cobra.Command, target string) error {
	if target == "ascend" {
		return nil
	}
	for _, name := range ascendFlagNames {
		if cmd.Flags().Changed(name) {
			return usagef("--%s applies to --target ascend only, not %s", name, target)
		}
	}
	return nil
}

// runBuildAscend runs an ascend build and prints what it wrote and, when
// ATC did not run, the command to run on a machine with CANN.
func runBuildAscend(cmd *cobra.Command, opts engine.BuildOptions, f *ascendFlags) error {
	if fl := cmd.Flags().Lookup("weights"); fl != nil && fl.Changed {
		return usagef("--weights does not apply to --target ascend, which writes one file per weight next to the model")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := engine.BuildAscend(ctx, opts, f.opts)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "built %s for ascend: %d nodes, %d weights (%.1f MB, %s), in %.2fs\n",
		res.ModelFile, res.GraphNodes, res.Params, float64(res.ParamBytes)/1e6, f.precision(), res.Elapsed.Seconds())
	fmt.Fprintln(out, "check-ascend: no node that ATC would reject")
	if res.OMFile != "" {
		fmt.Fprintf(out, "ATC wrote %s\n", res.OMFile)
	} else {
		fmt.Fprintf(out, "ATC did not run (%s). On a machine with CANN 8.0, after sourcing set_env.sh, run:\n  %s\n", res.ATCSkipped, res.ATCCommand)
	}
	fmt.Fprintf(out, "bundle %s: %d files\n", res.Bundle, len(res.Files))
	return nil
}

func (f *ascendFlags) precision() string {
	if f.opts.Precision == "" {
		return engine.PrecisionF32
	}
	return f.opts.Precision
}
