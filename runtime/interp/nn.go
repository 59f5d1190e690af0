package interp

import (
	"fmt"
	"math"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	kernels["conv2d"] = kernelConv2D
	kernels["group_norm"] = kernelGroupNorm
	kernels["resize_nearest"] = kernelResizeNearest
	kernels["pad"] = kernelPad
	kernels["rms_norm"] = kernelRMSNorm
	kernels["swiglu"] = kernelSwiGLU
	kernels["attention"] = kernelAttention
	kernels["rope"] = kernelRoPE
}

// kernelRoPE rotates the halves of each row of x by the row's angles. The
// products are rounded before the sum, as the unfused multiplies and add
// do, so the result is bit-identical to the decomposed form.
func kernelRoPE(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x, cos, sin := a[0], a[1], a[2]
	if x.DType != ir.F32 {
		return nil, fmt.Errorf("unsupported dtype %v", x.DType)
	}
	r := len(x.Shape)
	rows, dim := int(x.Shape[r-2]), int(x.Shape[r-1])
	half := dim / 2
	xd, cd, sd := x.F32(), cos.F32(), sin.F32()
	out := make([]float32, len(xd))
	for base := 0; base < len(xd); base += dim {
		row := (base / dim) % rows
		c, s := cd[row*half:(row+1)*half], sd[row*half:(row+1)*half]
		x1, x2 := xd[base:base+half], xd[base+half:base+dim]
		o1, o2 := out[base:base+half], out[base+half:base+dim]
		for j := range half {
			o1[j] = float32(x1[j]*c[j]) - float32(x2[j]*s[j])
			o2[j] = float32(x2[j]*c[j]) + float32(x1[j]*s[j])
		}
	}
	return ir.FromF32(out, x.Shape...), nil
}

// kernelConv2D lowers the convolution to one matrix product per image:
// the im2col matrix [c*kh*kw, oh*ow] times the weight [o, c*kh*kw].
func kernelConv2D(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x, w := a[0], a[1]
	if x.DType != ir.F32 || w.DType != ir.F32 {
		return nil, fmt.Errorf("unsupported dtypes %v, %v", x.DType, w.DType)
	}
	strides := n.Attrs.Ints("strides")
	if strides == nil {
		strides = []int64{1, 1}
	}
	pads := n.Attrs.Ints("pads")
	if pads == nil {
		pads = []int64{0, 0, 0, 0}
	}
	N, C, H, W := int(x.Shape[0]), int(x.Shape[1]), int(x.Shape[2]), int(x.Shape[3])
	O, KH, KW := int(w.Shape[0]), int(w.Shape[2]), int(w.Shape[3])
	sh, sw := int(strides[0]), int(strides[1])
	pt, pl, pb, pr := int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3])
	OH := (H+pt+pb-KH)/sh + 1
	OW := (W+pl+pr-KW)/sw + 1
	K := C * KH * KW
	xd, wd := x.F32(), w.F32()
	out := make([]float32, N*O*OH*OW)
	cols := make([]float32, K*OH*OW)
	for img := 0; img < N; img++ {
		src := xd[img*C*H*W : (img+1)*C*H*W]
		if KH == 1 && KW == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0 {
			copy(cols, src)
		} else {
			parallelFor(K, 8, func(lo, hi int) {
				for row := lo; row < hi; row++ {
					c, ky, kx := row/(KH*KW), (row/KW)%KH, row%KW
					dst := cols[row*OH*OW : (row+1)*OH*OW]
					for oy := 0; oy < OH; oy++ {
						iy := oy*sh + ky - pt
						for ox := 0; ox < OW; ox++ {
							ix := ox*sw + kx - pl
							v := float32(0)
							if iy >= 0 && iy < H && ix >= 0 && ix < W {
								v = src[c*H*W+iy*W+ix]
							}
							dst[oy*OW+ox] = v
						}
					}
				}
			})
		}
		dst := out[img*O*OH*OW : (img+1)*O*OH*OW]
		sgemm(O, OH*OW, K, wd, cols, dst)
		if len(a) == 3 {
			bias := a[2].F32()
			for o := 0; o < O; o++ {
				row := dst[o*OH*OW : (o+1)*OH*OW]
				for i := range row {
					row[i] += bias[o]
				}
			}
		}
	}
	return ir.FromF32(out, int64(N), int64(O), int64(OH), int64(OW)), nil
}

// kernelGroupNorm normalises each group of channels with its mean and
// biased variance (accumulated in float64), then applies the per-channel
// scale and bias.
func kernelGroupNorm(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x, scale, bias := a[0], a[1].F32(), a[2].F32()
	groups := int(n.Attrs.Int("groups", 32))
	eps := n.Attrs.Float("eps", 1e-6)
	N, C := int(x.Shape[0]), int(x.Shape[1])
	if C%groups != 0 {
		return nil, fmt.Errorf("%d channels do not split into %d groups", C, groups)
	}
	hw := int(ir.NumElements(x.Shape[2:]))
	cg := C / groups
	xd := x.F32()
	out := make([]float32, len(xd))
	parallelFor(N*groups, 1, func(lo, hi int) {
		for ng := lo; ng < hi; ng++ {
			img, grp := ng/groups, ng%groups
			base := (img*C + grp*cg) * hw
			seg := xd[base : base+cg*hw]
			sum := 0.0
			for _, v := range seg {
				sum += float64(v)
			}
			mean := sum / float64(len(seg))
			vs := 0.0
			for _, v := range seg {
				dv := float64(v) - mean
				vs += dv * dv
			}
			inv := 1 / math.Sqrt(vs/float64(len(seg))+eps)
			for c := 0; c < cg; c++ {
				ch := grp*cg + c
				sc, bi := float64(scale[ch]), float64(bias[ch])
				o := out[base+c*hw : base+(c+1)*hw]
				s := seg[c*hw : (c+1)*hw]
				for i, v := range s {
					o[i] = float32((float64(v)-mean)*inv*sc + bi)
				}
			}
		}
	})
	return ir.FromF32(out, x.Shape...), nil
}

func kernelResizeNearest(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x := a[0]
	s := int(n.Attrs.Int("scale", 2))
	N, C, H, W := int(x.Shape[0]), int(x.Shape[1]), int(x.Shape[2]), int(x.Shape[3])
	OH, OW := H*s, W*s
	xd := x.F32()
	out := make([]float32, N*C*OH*OW)
	parallelFor(N*C, 4, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			src := xd[p*H*W : (p+1)*H*W]
			dst := out[p*OH*OW : (p+1)*OH*OW]
			for oy := 0; oy < OH; oy++ {
				row := src[(oy/s)*W : (oy/s+1)*W]
				d := dst[oy*OW : (oy+1)*OW]
				for ox := range d {
					d[ox] = row[ox/s]
				}
			}
		}
	})
	return ir.FromF32(out, int64(N), int64(C), int64(OH), int64(OW)), nil
}

func kernelPad(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x := a[0]
	pads := n.Attrs.Ints("pads")
	value := float32(n.Attrs.Float("value", 0))
	rank := len(x.Shape)
	shape := make([]int64, rank)
	for i := range shape {
		shape[i] = x.Shape[i] + pads[i] + pads[i+rank]
	}
	out := make([]float32, ir.NumElements(shape))
	for i := range out {
		out[i] = value
	}
	xd := x.F32()
	ist, ost := strides(x.Shape), strides(shape)
	idx := make([]int64, rank)
	for i := range xd {
		rem := int64(i)
		off := int64(0)
		for k := rank - 1; k >= 0; k-- {
			idx[k] = rem % x.Shape[k]
			rem /= x.Shape[k]
			off += (idx[k] + pads[k]) * ost[k]
		}
		_ = ist
		out[off] = xd[i]
	}
	return ir.FromF32(out, shape...), nil
}

func kernelRMSNorm(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	x, w := a[0], a[1].F32()
	eps := n.Attrs.Float("eps", 1e-5)
	d := int(x.Shape[len(x.Shape)-1])
	xd := x.F32()
	out := make([]float32, len(xd))
	parallelFor(len(xd)/d, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := xd[r*d : (r+1)*d]
			s := float32(0)
			for _, v := range row {
				s += v * v
			}
			ms := s / float32(d)
			inv := float32(1 / math.Sqrt(float64(ms+float32(eps))))
			o := out[r*d : (r+1)*d]
			for i, v := range row {
				o[i] = v * inv * w[i]
			}
		}
	})
	return ir.FromF32(out, x.Shape...), nil
}

func kernelSwiGLU(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	g, u := a[0].F32(), a[1].F32()
	out := make([]float32, len(g))
	parallelFor(len(g), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := g[i]
			out[i] = x * float32(1/(1+math.Exp(-float64(x)))) * u[i]
		}
	})
	return ir.FromF32(out, a[0].Shape...), nil
}

// kernelAttention computes softmax(q k^T * scale + bias) v per batch and
// head; bias, when present, broadcasts over [batch, heads, seq, seq].
func kernelAttention(n *ir.Node, a []*ir.Tensor) (*ir.Tensor, error) {
	q, k, v := a[0], a[1], a[2]
	// Lq query rows attend to Lk keys; Lq < Lk once sink-gather has
	// narrowed the queries to the rows a head reads.
	B, H, Lq, D := int(q.Shape[0]), int(q.Shape[1]), int(q.Shape[2]), int(q.Shape[3])
	Lk := int(k.Shape[2])
	scale := float32(n.Attrs.Float("scale", 1/math.Sqrt(float64(D))))
	var bias []float32
	var bst []int64
	if len(a) == 4 {
		bias = a[3].F32()
		bst = broadcastStrides(a[3].Shape, []int64{int64(B), int64(H), int64(Lq), int64(Lk)})
	}
	qd, kd, vd := q.F32(), k.F32(), v.F32()
	out := make([]float32, len(qd))
	parallelFor(B*H, 1, func(lo, hi int) {
		scores := make([]float32, Lq*Lk)
		kt := make([]float32, D*Lk)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			qs := qd[bh*Lq*D : (bh+1)*Lq*D]
			ks := kd[bh*Lk*D : (bh+1)*Lk*D]
			for j := 0; j < Lk; j++ {
				for c := 0; c < D; c++ {
					kt[c*Lk+j] = ks[j*D+c]
				}
			}
			sgemmSerial(Lq, Lk, D, qs, kt, scores)
			for i := 0; i < Lq; i++ {
				row := scores[i*Lk : (i+1)*Lk]
				for j := range row {
					row[j] *= scale
					if bias != nil {
						row[j] += bias[int64(b)*bst[0]+int64(h)*bst[1]+int64(i)*bst[2]+int64(j)*bst[3]]
					}
				}
				softmaxRow(row, row)
			}
			sgemmSerial(Lq, D, Lk, scores, vd[bh*Lk*D:(bh+1)*Lk*D], out[bh*Lq*D:(bh+1)*Lq*D])
		}
	})
	return ir.FromF32(out, q.Shape...), nil
}

// sgemmSerial is sgemm on the calling goroutine, for kernels that already
// split their work.
func sgemmSerial(m, n, k int, a, b, c []float32) {
	gemmBlocked(activeKernel, m, n, k, a, k, b, n, c, n)
}
