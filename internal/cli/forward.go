package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
)

func newForwardCmd() *cobra.Command {
	var model, inputs, outputs, backend, graph string
	cmd := &cobra.Command{
		Use:   "forward --model CKPT --inputs IN.safetensors --outputs OUT.safetensors",
		Short: "Run one graph once on tensors from a safetensors file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" || inputs == "" || outputs == "" {
				return usagef("forward needs --model, --inputs and --outputs")
			}
			if graph != "transformer" {
				return usagef("--graph %q is not supported; use transformer", graph)
			}
			in, err := frontend.ReadSafetensors(inputs)
			if err != nil {
				return err
			}
			ids, ok := in[mmada.InputIDs]
			if !ok {
				return fmt.Errorf("inputs %s have no tensor %s", inputs, mmada.InputIDs)
			}
			if ids.DType != ir.I64 || len(ids.Shape) != 2 {
				return fmt.Errorf("inputs %s: %s is %v%v, want i64 [batch, seq]", inputs, mmada.InputIDs, ids.DType, ids.Shape)
			}
			mask, ok := in[mmada.AttentionMask]
			if !ok {
				mask = ir.NewTensor(ir.I64, ids.Shape...)
				for i := range mask.I64() {
					mask.I64()[i] = 1
				}
			}
			m, err := engine.LoadModel(model, backend)
			if err != nil {
				return err
			}
			defer m.Close()
			logits, err := m.Forward(ids, mask)
			if err != nil {
				return err
			}
			if err := frontend.WriteSafetensors(outputs, map[string]*ir.Tensor{mmada.Logits: logits}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: logits %v on %s\n", outputs, logits.Shape, m.Backend)
			return nil
		},
	}
	cmd.Flags().StringVar(&model, "model", "", "checkpoint folder or bundle")
	cmd.Flags().StringVar(&inputs, "inputs", "", "safetensors file with input_ids (and optionally attention_mask)")
	cmd.Flags().StringVar(&outputs, "outputs", "", "safetensors file to write logits to")
	cmd.Flags().StringVar(&backend, "backend", "auto", "auto, interp or ort")
	cmd.Flags().StringVar(&graph, "graph", "transformer", "graph to run: transformer")
	return cmd
}
