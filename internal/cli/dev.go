package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// newDevCmd groups helpers for tests and benchmarks; it is hidden from the
// main help.
func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dev", Short: "Helpers for tests and benchmarks", Hidden: true}
	var manifest, out, dtype string
	var shards int
	sparse := &cobra.Command{
		Use:   "sparse-checkpoint --manifest M.json --out DIR",
		Short: "Write a tensor manifest as a sparse checkpoint (headers plus holes, no disk used)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if manifest == "" || out == "" {
				return usagef("sparse-checkpoint needs --manifest and --out")
			}
			dt, err := ir.ParseDType(dtype)
			if err != nil {
				return usagef("--dtype: %v", err)
			}
			cfg, infos, err := frontend.LoadManifest(manifest)
			if err != nil {
				return err
			}
			frontend.ApplyDefaultDType(infos, dt)
			if err := frontend.WriteSparseCheckpoint(out, cfg, infos, shards); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d tensors to %s\n", len(infos), out)
			return nil
		},
	}
	sparse.Flags().StringVar(&manifest, "manifest", "", "tensor manifest (JSON with name, shape, dtype per tensor)")
	sparse.Flags().StringVar(&out, "out", "", "checkpoint folder to write")
	sparse.Flags().StringVar(&dtype, "dtype", "bf16", "dtype of tensors whose manifest entry has none")
	sparse.Flags().IntVar(&shards, "shards", 6, "number of safetensors shards")
	cmd.AddCommand(sparse)
	return cmd
}
