package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/magvit"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/interp"
)

func newIRCmd() *cobra.Command {
	var model, from, target, vqModel string
	var resolution int
	var stats, asJSON bool
	var batch, seq int64
	var pf passFlags
	cmd := &cobra.Command{
		Use:   "ir (--model CKPT | --from FILE.ir)",
		Short: "Print the IR of a checkpoint's graphs after the pass pipeline, or statistics of it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (model == "") == (from == "") {
				return usagef("ir needs exactly one of --model CKPT or --from FILE.ir")
			}
			if asJSON && !stats {
				return usagef("--json works with --stats only")
			}
			if stats && (batch <= 0 || seq <= 0) {
				return usagef("--batch %d and --seq %d must be positive", batch, seq)
			}
			po, err := pf.options(cmd, target)
			if err != nil {
				return err
			}
			var graphs []*ir.Graph
			var g *ir.Graph
			if from != "" {
				f, err := os.Open(from)
				if err != nil {
					return err
				}
				defer f.Close()
				if g, err = ir.Parse(f); err != nil {
					return fmt.Errorf("%s: %w", from, err)
				}
				if _, err := passes.Run(g, &passes.Context{}, po); err != nil {
					return err
				}
			} else {
				_, ck, built, err := engine.OpenCheckpointModelWith(model, po)
				if err != nil {
					return err
				}
				defer ck.Close()
				g = built
			}
			graphs = append(graphs, g)
			if vqModel != "" {
				vqGraphs, closeVQ, err := vqGraphsFor(vqModel, resolution, po)
				if err != nil {
					return err
				}
				defer closeVQ()
				graphs = append(graphs, vqGraphs...)
			}
			if !stats {
				for _, g := range graphs {
					if err := ir.Print(cmd.OutOrStdout(), g); err != nil {
						return err
					}
				}
				return nil
			}
			var all []passes.GraphStats
			for _, g := range graphs {
				all = append(all, passes.Stats(g, map[string]int64{"batch": batch, "seq": seq}))
			}
			if asJSON {
				data, err := json.Marshal(map[string]any{"graphs": all})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(data))
				return nil
			}
			for _, st := range all {
				printStats(cmd, st, batch, seq)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "checkpoint folder")
	f.StringVar(&from, "from", "", "read a graph in the IR text form instead of building one")
	f.StringVar(&target, "target", "onnx", "pipeline target: onnx or ascend")
	f.BoolVar(&stats, "stats", false, "print the op histogram, parameter bytes and FLOPs instead of the IR")
	f.BoolVar(&asJSON, "json", false, "with --stats, print JSON")
	f.Int64Var(&batch, "batch", 1, "batch size that --stats counts FLOPs for")
	f.Int64Var(&seq, "seq", 256, "sequence length that --stats counts FLOPs for")
	f.StringVar(&vqModel, "vq-model", "", "also build the MAGVIT-v2 vq-encoder and vq-decoder graphs of this checkpoint")
	f.IntVar(&resolution, "resolution", 512, "with --vq-model: the image side in pixels the vq graphs are built for")
	pf.register(cmd)
	return cmd
}

func printStats(cmd *cobra.Command, st passes.GraphStats, batch, seq int64) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "graph %s: %d parameter bytes, %.3g FLOPs at batch %d, seq %d\n", st.Name, st.ParameterBytes, float64(st.FLOPs), batch, seq)
	ops := make([]string, 0, len(st.Ops))
	for op := range st.Ops {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool {
		return st.Ops[ops[i]] > st.Ops[ops[j]] || (st.Ops[ops[i]] == st.Ops[ops[j]] && ops[i] < ops[j])
	})
	for _, op := range ops {
		fmt.Fprintf(w, "  %-16s %d\n", op, st.Ops[op])
	}
}

// vqGraphsFor builds the vq-encoder and vq-decoder graphs of a MAGVIT-v2
// checkpoint for square images of the given side, through the pipeline.
func vqGraphsFor(dir string, resolution int, po passes.Options) ([]*ir.Graph, func(), error) {
	cfg, err := magvit.LoadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := magvit.CheckImageSize(resolution, resolution, cfg.Encoder.Factor()); err != nil {
		return nil, nil, usagef("--resolution: %v", err)
	}
	ck, err := frontend.OpenCheckpoint(dir)
	if err != nil {
		return nil, nil, err
	}
	side := resolution / cfg.Encoder.Factor()
	enc, err := magvit.BuildEncoder(cfg, ck, magvit.EncoderOptions{Height: resolution, Width: resolution, Batch: 1})
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	dec, err := magvit.BuildDecoder(cfg, ck, magvit.DecoderOptions{NumTokens: side * side, Batch: 1})
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	for _, g := range []*ir.Graph{enc, dec} {
		if _, err := passes.Run(g, &passes.Context{Eval: interp.EvalNode}, po); err != nil {
			ck.Close()
			return nil, nil, err
		}
	}
	return []*ir.Graph{enc, dec}, func() { ck.Close() }, nil
}
