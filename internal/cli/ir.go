package cli

import (
	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
)

func newIRCmd() *cobra.Command {
	var model string
	cmd := &cobra.Command{
		Use:   "ir --model CKPT",
		Short: "Print the IR of a checkpoint's graphs in the text form",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" {
				return usagef("ir needs --model CKPT")
			}
			_, ck, g, err := engine.OpenCheckpointModel(model)
			if err != nil {
				return err
			}
			defer ck.Close()
			return ir.Print(cmd.OutOrStdout(), g)
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "checkpoint folder")
	return cmd
}
