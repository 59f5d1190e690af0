package serve

import (
	"fmt"

	"github.com/mmadac/mmadac/runtime/sampler"
)

// batchNoise gives every row of a batched sampler call the uniforms that
// the row's own request would draw alone from sampler.NewSeeded(seed).
// Batching therefore never changes a result: a request returns the same
// ids (or codes) whether it ran alone or beside others.
//
// The samplers ask for draws whose first dimension is the batch, or, for
// the flat t2i categorical draw of shape [batch*N], whose single row is
// the rows' values one after another. Each member source is asked for the
// same draw with batch 1, and the rows are mapped back.
type batchNoise struct {
	members []sampler.NoiseSource
}

func newBatchNoise(seeds []uint64) *batchNoise {
	n := &batchNoise{members: make([]sampler.NoiseSource, len(seeds))}
	for i, s := range seeds {
		n.members[i] = sampler.NewSeeded(s)
	}
	return n
}

// Next implements sampler.NoiseSource.
func (n *batchNoise) Next(kind string, shape []int64) (sampler.Draw, error) {
	batch := int64(len(n.members))
	if len(shape) == 0 || shape[0]%batch != 0 {
		return nil, fmt.Errorf("batched noise: draw %s of shape %v does not split into %d rows", kind, shape, batch)
	}
	one := append([]int64{shape[0] / batch}, shape[1:]...)
	draws := make([]sampler.Draw, batch)
	for i, m := range n.members {
		d, err := m.Next(kind, one)
		if err != nil {
			return nil, err
		}
		draws[i] = d
	}
	if len(shape) == 1 {
		return flatDraw{draws: draws}, nil
	}
	// Rows per member: the product of the dimensions between the batch
	// and the last one, e.g. seq for a [batch, seq, vocab] draw.
	rows := 1
	for _, d := range shape[1 : len(shape)-1] {
		rows *= int(d)
	}
	return rowDraw{draws: draws, rows: rows}, nil
}

// rowDraw maps row r of a batched draw to row r%rows of member r/rows.
type rowDraw struct {
	draws []sampler.Draw
	rows  int
}

func (d rowDraw) Row64(row int) []float64 { return d.draws[row/d.rows].Row64(row % d.rows) }
func (d rowDraw) Row32(row int) []float32 { return d.draws[row/d.rows].Row32(row % d.rows) }

// flatDraw is a one-dimensional draw: its only row is the members' rows
// concatenated.
type flatDraw struct{ draws []sampler.Draw }

func (d flatDraw) Row64(row int) []float64 {
	var out []float64
	for _, m := range d.draws {
		out = append(out, m.Row64(row)...)
	}
	return out
}

func (d flatDraw) Row32(row int) []float32 {
	var out []float32
	for _, m := range d.draws {
		out = append(out, m.Row32(row)...)
	}
	return out
}
