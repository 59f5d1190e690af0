package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/internal/engine"
)

func newBuildCmd() *cobra.Command {
	var opts engine.BuildOptions
	var weights string
	var pf passFlags
	var af *ascendFlags
	cmd := &cobra.Command{
		Use:   "build --model CKPT --out DIR",
		Short: "Compile a checkpoint into a bundle folder (ONNX graphs, config, manifest)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Model == "" || opts.Out == "" {
				return usagef("build needs --model CKPT and --out DIR")
			}
			opts.Weights = onnx.WeightMode(weights)
			po, err := pf.options(cmd, opts.Target)
			if err != nil {
				return err
			}
			opts.Passes = po
			if err := af.checkTarget(cmd, opts.Target); err != nil {
				return err
			}
			if opts.Target == "ascend" {
				return runBuildAscend(cmd, opts, af)
			}
			res, err := engine.Build(opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "built %s: %d IR nodes, %d weights (%.1f MB), %s weights, in %.2fs\n",
				res.ModelFile, res.GraphNodes, res.Params, float64(res.ParamBytes)/1e6, opts.Weights, res.Elapsed.Seconds())
			for _, f := range res.Files {
				fmt.Fprintln(out, "  "+f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Model, "model", "", "checkpoint folder (config.json and safetensors)")
	cmd.Flags().StringVar(&opts.Out, "out", "", "bundle folder to write")
	cmd.Flags().StringVar(&opts.Target, "target", "onnx", "compilation target: onnx (ONNX Runtime) or ascend (ATC-ready ONNX, and OM when atc is available)")
	cmd.Flags().StringVar(&weights, "weights", "inline", "inline (in the .onnx file, under 2 GB) or external (linked in place inside the checkpoint's safetensors)")
	d := engine.DefaultScheduleSettings()
	opts.Schedules = d
	cmd.Flags().IntVar(&opts.Schedules.GenLength, "gen-length", d.GenLength, "text schedule folded into the bundle: tokens generated")
	cmd.Flags().IntVar(&opts.Schedules.Steps, "steps", d.Steps, "text schedule folded into the bundle: sampling steps")
	cmd.Flags().IntVar(&opts.Schedules.BlockLength, "block-length", d.BlockLength, "text schedule folded into the bundle: tokens per block")
	cmd.Flags().IntVar(&opts.Schedules.Timesteps, "timesteps", d.Timesteps, "t2i schedule folded into the bundle: decoding steps")
	cmd.Flags().Float64Var(&opts.Schedules.T2ITemperature, "t2i-temperature", d.T2ITemperature, "t2i schedule folded into the bundle: initial temperature")
	cmd.Flags().IntVar(&opts.Check, "check", 0, "run this many random inputs through the interpreter before and after the pipeline and fail on a difference")
	pf.register(cmd)
	af = addAscendFlags(cmd)
	return cmd
}
