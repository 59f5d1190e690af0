package passes

import (
	"math"
	"strconv"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	register(&Pass{Name: "fold-rope", Run: runFoldRoPE,
		Doc: "turn the RoPE cos/sin computation into constant tables indexed by position"})
}

// DefaultMaxSeqLen is the table length fold-rope uses when the context
// does not give one.
const DefaultMaxSeqLen = 4096

// runFoldRoPE matches
//
//	%pos = arange %x {axis=a, dtype=f32}
//	%ang = mul (unsqueeze %pos {axes=[1]}), %inv_freq      (a constant)
//	%full = concat %ang, %ang {axis=1}
//	%c = cos %full      and      %s = sin %full
//
// and replaces cos and sin with gathers from [max_seq_len, head_dim] tables
// computed here with the interpreter's float32 arithmetic, so the folded
// graph gives bit-identical results.
func runFoldRoPE(g *ir.Graph, c *Context) error {
	maxLen := c.MaxSeqLen
	if maxLen <= 0 {
		maxLen = DefaultMaxSeqLen
	}
	folded := 0
	ed := newEdits()
	tables := map[string]*ir.Value{}
	for _, n := range g.Nodes {
		if n.Op != "cos" && n.Op != "sin" {
			continue
		}
		cat := def(n.Inputs[0], "concat")
		if cat == nil || len(cat.Inputs) != 2 || cat.Inputs[0] != cat.Inputs[1] || cat.Attrs.Int("axis", 0) != 1 {
			continue
		}
		mul := def(cat.Inputs[0], "mul")
		if mul == nil || mul.Inputs[1].Kind != ir.KindConst {
			continue
		}
		uns := def(mul.Inputs[0], "unsqueeze")
		if uns == nil || !equalInts(uns.Attrs.Ints("axes"), []int64{1}) {
			continue
		}
		ar := def(uns.Inputs[0], "arange")
		if ar == nil || ar.Attrs.DType("dtype", ir.I64) != ir.F32 {
			continue
		}
		inv, ok := mul.Inputs[1].Const.Data.([]float32)
		if !ok {
			continue
		}
		axis := ar.Attrs.Int("axis", 0)
		src := ar.Inputs[0].Type.Shape
		if axis < 0 {
			axis += int64(len(src))
		}
		if d := src[axis]; d.IsStatic() && d.Size > maxLen {
			// The table would not cover this sequence; leave it unfolded.
			continue
		}
		key := n.Op + ":" + string(ir.TensorBytes(mul.Inputs[1].Const))
		tv, seen := tables[key]
		if !seen {
			tv = g.Constant(ropeTable(n.Op, inv, maxLen))
			tables[key] = tv
		}
		e := &emitter{g: g}
		pos := e.op("arange", ir.Attrs{"axis": ar.Attrs.Int("axis", 0), "dtype": ir.I64}, ar.Inputs[0])
		out := e.op("gather", ir.Attrs{"axis": int64(0)}, tv, pos)
		ed.insert(n, e.nodes)
		ed.replace(n.Outputs[0], out)
		folded++
	}
	ed.apply(g)
	if g.Meta == nil {
		g.Meta = map[string]string{}
	}
	if folded > 0 {
		g.Meta["rope_table_length"] = strconv.FormatInt(maxLen, 10)
	}
	c.count("fold-rope.folded", folded)
	return runDCE(g, c)
}

// ropeTable computes cos or sin of [p*inv, p*inv] for p < maxLen with the
// interpreter's float32 arithmetic.
func ropeTable(op string, inv []float32, maxLen int64) *ir.Tensor {
	half := len(inv)
	table := ir.NewTensor(ir.F32, maxLen, int64(2*half))
	td := table.F32()
	for p := 0; p < int(maxLen); p++ {
		for j, f := range inv {
			a := float32(p) * f
			var v float32
			if op == "cos" {
				v = float32(math.Cos(float64(a)))
			} else {
				v = float32(math.Sin(float64(a)))
			}
			td[p*2*half+j] = v
			td[p*2*half+half+j] = v
		}
	}
	return table
}
