package ir

import "fmt"

// Fused ops are produced by the fusion passes, never by the model builders.
// Each has a decomposition into the basic ops (in package passes) for
// targets without a kernel for it.
func registerFused() {
	register(&OpDef{
		Name: "rms_norm", MinInputs: 2, MaxInputs: 2, Infer: inferSameFirst,
		Doc: "x * rsqrt(mean(x^2 over the last axis) + {eps}) * weight, statistics in f32",
	})
	register(&OpDef{
		Name: "swiglu", MinInputs: 2, MaxInputs: 2, Infer: inferBinary(false),
		Doc: "silu(gate) * up",
	})
	register(&OpDef{
		Name: "rope", MinInputs: 3, MaxInputs: 3, Infer: inferRoPE,
		Doc: "rotary embedding of x[..., rows, dim] by half tables cos, sin[rows, dim/2]: [x1*cos - x2*sin, x2*cos + x1*sin] over the halves x1, x2 of the last axis",
	})
	register(&OpDef{
		Name: "attention", MinInputs: 3, MaxInputs: 4, Infer: inferAttention,
		Doc: "softmax(q k^T * {scale} + bias) v over q[batch,heads,rows,dim] and k,v[batch,heads,seq,dim], optional additive bias",
	})
}

// inferRoPE checks that the tables hold half a row of x per row of x.
func inferRoPE(in []*Value, a Attrs) ([]Type, error) {
	x, cos, sin := in[0].Type, in[1].Type, in[2].Type
	r := x.Shape.Rank()
	if r < 2 || cos.Shape.Rank() != 2 || !cos.Equal(sin) || cos.DType != x.DType {
		return nil, fmt.Errorf("x %v needs rank >= 2 and cos %v, sin %v two equal rank-2 tables of its dtype", x, cos, sin)
	}
	dim := x.Shape[r-1]
	if !dim.IsStatic() || dim.Size%2 != 0 || cos.Shape[1] != D(dim.Size/2) || cos.Shape[0] != x.Shape[r-2] {
		return nil, fmt.Errorf("cos %v must be [rows, dim/2] for x %v with an even last dimension", cos, x)
	}
	return []Type{x}, nil
}

// inferAttention accepts fewer query rows than keys: sink-gather narrows q
// to the rows a head reads while k and v keep the whole sequence.
func inferAttention(in []*Value, a Attrs) ([]Type, error) {
	q, k, v := in[0].Type, in[1].Type, in[2].Type
	if q.Shape.Rank() != 4 || !k.Shape.Equal(v.Shape) || k.Shape.Rank() != 4 {
		return nil, fmt.Errorf("q %v, k %v and v %v must be rank-4 shapes with k and v equal", q, k, v)
	}
	for _, d := range []int{0, 1, 3} {
		if q.Shape[d] != k.Shape[d] {
			return nil, fmt.Errorf("q %v and k %v differ in dimension %d; only the row dimension (2) may differ", q, k, d)
		}
	}
	return []Type{q}, nil
}
