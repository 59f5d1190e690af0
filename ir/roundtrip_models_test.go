package ir_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
)

// TestRoundTripTransformer prints the tiny MMaDA transformer, parses the
// text back and requires the same text, with every checkpoint weight still
// named and every node's type inferred again. It lives in package ir_test
// because models imports ir.
func TestRoundTripTransformer(t *testing.T) {
	dir := filepath.Join("..", "testdata", "upstream-tiny", "mmada")
	cfg, err := frontend.LoadLLaDAConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := frontend.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ckpt.Close()

	for _, tc := range []struct {
		name string
		opts mmada.Options
	}{
		{"symbolic", mmada.Options{}},
		{"static", mmada.Options{Batch: 1, Seq: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := mmada.Build(cfg, ckpt, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			text := g.String()
			parsed, err := ir.ParseString(text)
			if err != nil {
				t.Fatalf("parse printed transformer: %v", err)
			}
			if err := ir.Verify(parsed); err != nil {
				t.Fatalf("parsed transformer fails Verify: %v", err)
			}
			if again := parsed.String(); again != text {
				t.Fatalf("print(parse(text)) differs from text at line %d", firstDiffLine(text, again))
			}
			if len(parsed.Nodes) != len(g.Nodes) || len(parsed.Params) != len(g.Params) {
				t.Errorf("parsed %d nodes and %d params, built %d and %d", len(parsed.Nodes), len(parsed.Params), len(g.Nodes), len(g.Params))
			}
			for i, p := range parsed.Params {
				if p.Name != g.Params[i].Name || p.Source != nil {
					t.Errorf("param %d is %q with source %v, want %q with a nil source", i, p.Name, p.Source, g.Params[i].Name)
				}
			}
			if parsed.OutputValue(mmada.Logits) == nil {
				t.Errorf("parsed graph has no %s output", mmada.Logits)
			}
		})
	}
}

func firstDiffLine(a, b string) int {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range la {
		if i >= len(lb) || la[i] != lb[i] {
			return i + 1
		}
	}
	return len(la) + 1
}
