package ir

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that a text it accepts is
// one printing step away from the fixed point: Print(Parse(s)) parses again
// and prints identically. A parsed graph with outputs must also pass Verify.
func FuzzParse(f *testing.F) {
	for _, tg := range testGraphs() {
		f.Add(mustBuild(f, tg).String())
	}
	// A few texts the printer never writes, so the fuzzer starts from the
	// lenient parts of the grammar too.
	f.Add("graph @g { // comment\r\n  input %7 : f32[n]\n\n  %a, %b = test_split_pair %7 : f32[1], f32[1]\n  output o = %b\n}")
	f.Add("graph @g {\n  const %0 : f16[2] = [0x3c00, 1.5]\n  const %1 : f32[4] = dense<sha256:00ff>\n  output c = %0\n}\n")
	f.Add("graph @g {\n  input %x : f32[2]\n  %0 = neg %x {s=\"a\\\"b\", f=[1.0,-inf], i=[], d=bf16} : f32[2]\n  output y = %0\n}\n")
	f.Fuzz(func(t *testing.T, src string) {
		g, err := ParseString(src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if pe.Line < 1 || pe.Col < 1 {
				t.Fatalf("error position %d:%d is not 1-based: %v", pe.Line, pe.Col, err)
			}
			return
		}
		if len(g.Outputs) > 0 {
			if err := Verify(g); err != nil {
				t.Fatalf("parsed graph fails Verify: %v\n--- input\n%s", err, src)
			}
		}
		first := g.String()
		again, err := ParseString(first)
		if err != nil {
			t.Fatalf("printed graph does not parse: %v\n--- printed\n%s--- input\n%s", err, first, src)
		}
		if second := again.String(); second != first {
			t.Fatalf("print is not stable\n--- first\n%s--- second\n%s", first, second)
		}
		if !strings.HasSuffix(first, "}\n") {
			t.Fatalf("printed graph does not end with a closing brace:\n%s", first)
		}
	})
}
