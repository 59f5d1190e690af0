package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/magvit"
	"github.com/mmadac/mmadac/models/mmada"
)

type forwardOptions struct {
	model, inputs, outputs, backend, graph string
	image, squash                          string
	resolution                             int
	grid                                   []int
}

func newForwardCmd() *cobra.Command {
	o := &forwardOptions{}
	cmd := &cobra.Command{
		Use:   "forward --model CKPT (--inputs IN.safetensors | --image FILE --resolution R) --outputs OUT.safetensors",
		Short: "Run one graph once on tensors from a safetensors file",
		Long: `Run one graph once on tensors from a safetensors file.

Graphs and their tensors:
  transformer  input_ids i64 [B,L] (and optionally attention_mask) -> logits f32 [B,L,V]
  vq-encoder   pixels f32 [B,3,H,W] in [-1,1] -> latent (after quant_conv), codes i64 [B,N];
               --image FILE --resolution R [--squash] preprocesses an image and also writes pixels
  vq-decoder   codes i64 [B,N] -> pixels f32 [B,3,H,W] before clamping`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runForward(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "checkpoint folder or bundle (MAGVIT-v2 folder for the vq graphs)")
	f.StringVar(&o.inputs, "inputs", "", "safetensors file with the graph's inputs")
	f.StringVar(&o.outputs, "outputs", "", "safetensors file to write the outputs to")
	f.StringVar(&o.backend, "backend", "auto", "auto, acl, ort or interp")
	f.StringVar(&o.graph, "graph", "transformer", "transformer, vq-encoder or vq-decoder")
	f.StringVar(&o.image, "image", "", "vq-encoder: an image file to preprocess instead of --inputs")
	f.IntVar(&o.resolution, "resolution", 0, "vq-encoder with --image: the image side in pixels")
	f.StringVar(&o.squash, "squash", "false", "vq-encoder with --image: resize straight to a square (true) or crop (false)")
	f.IntSliceVar(&o.grid, "grid", nil, "vq-decoder: latent grid rows,cols (default: square)")
	return cmd
}

func runForward(cmd *cobra.Command, o *forwardOptions) error {
	if o.model == "" || o.outputs == "" {
		return usagef("forward needs --model and --outputs")
	}
	if (o.inputs == "") == (o.image == "") {
		return usagef("give exactly one of --inputs or --image")
	}
	if o.image != "" && o.graph != magvit.EncoderGraph {
		return usagef("--image works only with --graph %s", magvit.EncoderGraph)
	}
	var in map[string]*ir.Tensor
	if o.inputs != "" {
		var err error
		if in, _, err = frontend.ReadSafetensorsSkipping(o.inputs); err != nil {
			return err
		}
	}
	var out map[string]*ir.Tensor
	var err error
	switch o.graph {
	case "transformer":
		out, err = forwardTransformer(o, in)
	case magvit.EncoderGraph:
		out, err = forwardEncoder(o, in)
	case magvit.DecoderGraph:
		out, err = forwardDecoder(o, in)
	default:
		return usagef("--graph %q is not supported; use transformer, %s or %s", o.graph, magvit.EncoderGraph, magvit.DecoderGraph)
	}
	if err != nil {
		return err
	}
	if err := frontend.WriteSafetensors(o.outputs, out); err != nil {
		return err
	}
	for name, t := range out {
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s %v%v\n", o.outputs, name, t.DType, t.Shape)
	}
	return nil
}

func need(in map[string]*ir.Tensor, file, name string, dt ir.DType, rank int) (*ir.Tensor, error) {
	t, ok := in[name]
	if !ok {
		return nil, fmt.Errorf("inputs %s have no tensor %s", file, name)
	}
	if t.DType != dt || len(t.Shape) != rank {
		return nil, fmt.Errorf("inputs %s: %s is %v%v, want %v with rank %d", file, name, t.DType, t.Shape, dt, rank)
	}
	return t, nil
}

func forwardTransformer(o *forwardOptions, in map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	ids, err := need(in, o.inputs, mmada.InputIDs, ir.I64, 2)
	if err != nil {
		return nil, err
	}
	mask, ok := in[mmada.AttentionMask]
	if !ok {
		mask = ir.NewTensor(ir.I64, ids.Shape...)
		for i := range mask.I64() {
			mask.I64()[i] = 1
		}
	}
	m, err := engine.LoadModel(o.model, o.backend)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	logits, err := m.Forward(ids, mask)
	if err != nil {
		return nil, err
	}
	return map[string]*ir.Tensor{mmada.Logits: logits}, nil
}

func forwardEncoder(o *forwardOptions, in map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	vq, err := engine.LoadVQ(o.model, o.backend)
	if err != nil {
		return nil, err
	}
	defer vq.Close()
	var pixels *ir.Tensor
	if o.image != "" {
		if o.resolution <= 0 {
			return nil, usagef("--image needs --resolution")
		}
		if pixels, _, err = encodeImage(vq, o.image, o.resolution, o.squash); err != nil {
			return nil, err
		}
	} else if pixels, err = need(in, o.inputs, magvit.Pixels, ir.F32, 4); err != nil {
		return nil, err
	}
	latent, codes, err := vq.Encode(pixels)
	if err != nil {
		return nil, err
	}
	out := map[string]*ir.Tensor{magvit.Latent: latent, magvit.Codes: codes}
	if o.image != "" {
		out[magvit.Pixels] = pixels
	}
	return out, nil
}

func forwardDecoder(o *forwardOptions, in map[string]*ir.Tensor) (map[string]*ir.Tensor, error) {
	codes, err := need(in, o.inputs, magvit.Codes, ir.I64, 2)
	if err != nil {
		return nil, err
	}
	var grid [2]int
	if len(o.grid) == 2 {
		grid = [2]int{o.grid[0], o.grid[1]}
	} else if len(o.grid) != 0 {
		return nil, usagef("--grid needs two numbers, rows,cols")
	}
	vq, err := engine.LoadVQ(o.model, o.backend)
	if err != nil {
		return nil, err
	}
	defer vq.Close()
	pixels, err := vq.Decode(codes, grid)
	if err != nil {
		return nil, err
	}
	return map[string]*ir.Tensor{magvit.Pixels: pixels}, nil
}
