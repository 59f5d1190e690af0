package ir

import (
	"strings"
	"testing"
)

func TestSumDim(t *testing.T) {
	cases := []struct {
		dims []Dim
		want Dim
	}{
		{[]Dim{D(3), D(4)}, D(7)},
		{[]Dim{D(320), S("block")}, S("block_plus_320")},
		{[]Dim{S("cached"), S("block")}, S("cached_plus_block")},
		{[]Dim{S("a"), D(2), S("b"), D(3)}, S("a_plus_b_plus_5")},
	}
	for _, c := range cases {
		if got := SumDim(c.dims...); got != c.want {
			t.Errorf("SumDim(%v) = %v, want %v", c.dims, got, c.want)
		}
	}
}

// TestConcatSymbolicAxis checks that a concat along symbolic dimensions
// gets the SumDim symbol, that the symbol survives the text form, and
// that an input declared with it type-checks against the concat.
func TestConcatSymbolicAxis(t *testing.T) {
	g, err := Build("cat", func(g *Graph) {
		a := g.Input("a", F32, Shape{D(2), S("cached")})
		b := g.Input("b", F32, Shape{D(2), S("block")})
		bias := g.Input("bias", F32, Shape{D(2), SumDim(S("cached"), S("block"))})
		g.SetOutput("y", g.Op("add", nil, g.Op("concat", Attrs{"axis": int64(1)}, a, b), bias))
	})
	if err != nil {
		t.Fatal(err)
	}
	y := g.OutputValue("y")
	if got := y.Type.Shape[1]; got != S("cached_plus_block") {
		t.Errorf("concat dimension %v, want cached_plus_block", got)
	}
	back, err := Parse(strings.NewReader(g.String()))
	if err != nil {
		t.Fatalf("text form does not parse back: %v\n%s", err, g)
	}
	if back.String() != g.String() {
		t.Errorf("round trip changed the graph:\n%s\nwant\n%s", back, g)
	}
}
