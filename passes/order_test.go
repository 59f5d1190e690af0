package passes

// Tests of the pass table and the pipeline driver: ordering rules, names,
// required passes, option checking, dumps and error recovery.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

// smallBlock is an unfused norm, attention and SwiGLU, enough for every
// fusion of the default pipelines to fire once.
const smallBlock = `graph @small_block {
  input %x : f32[1,2,4,8]
  input %w : f32[8]
  const %eps : f32[] = [1e-05]
  const %scale : f32[] = [0.35355338]
  %sq = mul %x, %x : f32[1,2,4,8]
  %ms = reduce_mean %sq {axes=[-1], keepdims=1} : f32[1,2,4,1]
  %a = add %ms, %eps : f32[1,2,4,1]
  %r = rsqrt %a : f32[1,2,4,1]
  %nx = mul %x, %r : f32[1,2,4,8]
  %n = mul %nx, %w : f32[1,2,4,8]
  %kt = transpose %n {perm=[0,1,3,2]} : f32[1,2,8,4]
  %qk = matmul %n, %kt : f32[1,2,4,4]
  %s = mul %qk, %scale : f32[1,2,4,4]
  %p = softmax %s {axis=-1} : f32[1,2,4,4]
  %o = matmul %p, %n : f32[1,2,4,8]
  %g = silu %o : f32[1,2,4,8]
  %y = mul %g, %n : f32[1,2,4,8]
  output y = %y
}
`

func parseSmallBlock(t *testing.T) *ir.Graph {
	t.Helper()
	g, err := ir.ParseString(smallBlock)
	if err != nil {
		t.Fatalf("parse small block: %v", err)
	}
	return g
}

// withTestPass registers a pass and a one-pass pipeline "test-only" for the
// duration of a test.
func withTestPass(t *testing.T, p *Pass) {
	t.Helper()
	register(p)
	Pipelines["test-only"] = []string{p.Name}
	t.Cleanup(func() {
		delete(Registry, p.Name)
		delete(Pipelines, "test-only")
	})
}

func TestPipelineNamesRegistered(t *testing.T) {
	for target, names := range Pipelines {
		if len(names) == 0 {
			t.Errorf("pipeline %s is empty", target)
		}
		for i, name := range names {
			if _, ok := Registry[name]; !ok {
				t.Errorf("pipeline %s, position %d: pass %q is not registered (known: %s)", target, i, name, strings.Join(Names(), ", "))
			}
		}
	}
}

func TestOrderRulesNameRegisteredPasses(t *testing.T) {
	for _, rule := range Order {
		for _, name := range []string{rule.Before, rule.After} {
			if _, ok := Registry[name]; !ok {
				t.Errorf("order rule %s before %s names unregistered pass %q", rule.Before, rule.After, name)
			}
		}
		if rule.Before == rule.After {
			t.Errorf("order rule puts %s before itself", rule.Before)
		}
		if strings.TrimSpace(rule.Why) == "" {
			t.Errorf("order rule %s before %s gives no reason", rule.Before, rule.After)
		}
	}
}

// TestOrderRulesHold checks every rule whose two passes both appear in a
// pipeline: the first run of Before must come before the first run of
// After.
func TestOrderRulesHold(t *testing.T) {
	for target, names := range Pipelines {
		for _, rule := range Order {
			b, a := slices.Index(names, rule.Before), slices.Index(names, rule.After)
			if b < 0 || a < 0 {
				continue
			}
			if b >= a {
				t.Errorf("pipeline %s runs %s at position %d and %s at %d, but %s must run before %s: %s",
					target, rule.Before, b, rule.After, a, rule.Before, rule.After, rule.Why)
			}
		}
	}
}

func TestRegistryEntriesComplete(t *testing.T) {
	for name, p := range Registry {
		if p.Name != name {
			t.Errorf("Registry[%q] holds a pass named %q", name, p.Name)
		}
		if p.Run == nil {
			t.Errorf("pass %s has no Run function", name)
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("pass %s has no Doc line for the CLI help", name)
		}
		if name != strings.ToLower(name) || strings.ContainsAny(name, " _") {
			t.Errorf("pass name %q is not kebab-case", name)
		}
	}
}

func TestRequiredPassCannotBeDisabled(t *testing.T) {
	required := 0
	for _, name := range Names() {
		if !Registry[name].Required {
			continue
		}
		required++
		for target := range Pipelines {
			g := parseSmallBlock(t)
			before := g.String()
			_, err := Run(g, &Context{Eval: interp.EvalNode}, Options{Target: target, Disable: []string{name}})
			if err == nil {
				t.Errorf("target %s: disabling required pass %s was accepted", target, name)
				continue
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "required") {
				t.Errorf("target %s: error %q does not name the required pass %s", target, err, name)
			}
			if g.String() != before {
				t.Errorf("target %s: the graph changed although Run rejected its options", target)
			}
		}
	}
	if required == 0 {
		t.Fatal("no pass is marked Required; dce and decompose-fused should be")
	}
}

func TestOptionalPassCanBeDisabled(t *testing.T) {
	g := parseSmallBlock(t)
	timings, err := Run(g, &Context{Eval: interp.EvalNode}, Options{Target: "onnx", Disable: []string{"fuse-attention"}, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range timings {
		if tm.Name == "fuse-attention" {
			t.Errorf("disabled pass fuse-attention ran (timings %v)", timings)
		}
	}
	if n := countOps(g)["attention"]; n != 0 {
		t.Errorf("graph has %d attention ops with fuse-attention disabled", n)
	}
	if n := countOps(g)["rms_norm"]; n != 1 {
		t.Errorf("graph has %d rms_norm ops, want 1 (only fuse-attention was disabled)", n)
	}
}

func TestUnknownPassNamesRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		flag string
	}{
		{"disable", Options{Disable: []string{"no-such-pass"}}, "--disable-pass"},
		{"print-after", Options{PrintAfter: []string{"no-such-pass"}}, "--print-ir-after"},
		{"print-before", Options{PrintBefore: []string{"no-such-pass"}}, "--print-ir-before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := parseSmallBlock(t)
			before := g.String()
			_, err := Run(g, &Context{Eval: interp.EvalNode}, tc.opts)
			if err == nil {
				t.Fatal("unknown pass name was accepted")
			}
			for _, want := range []string{"no-such-pass", tc.flag, "dce"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if g.String() != before {
				t.Error("the graph changed although Run rejected its options")
			}
		})
	}
}

func TestUnknownTargetRejected(t *testing.T) {
	_, err := Run(parseSmallBlock(t), nil, Options{Target: "tpu"})
	if err == nil || !strings.Contains(err.Error(), `"tpu"`) {
		t.Fatalf("Run with target tpu returned %v, want an error naming the target", err)
	}
}

func TestNoneRunsNoPass(t *testing.T) {
	g := parseSmallBlock(t)
	before := g.String()
	timings, err := Run(g, nil, Options{None: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(timings) != 0 || g.String() != before {
		t.Errorf("Options.None ran %d passes or changed the graph", len(timings))
	}
}

func TestDefaultTargetIsONNX(t *testing.T) {
	g := parseSmallBlock(t)
	c := &Context{Eval: interp.EvalNode}
	timings, err := Run(g, c, Options{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Target != "onnx" {
		t.Errorf("Context.Target = %q, want onnx", c.Target)
	}
	var ran []string
	for _, tm := range timings {
		ran = append(ran, tm.Name)
	}
	if !slices.Equal(ran, Pipelines["onnx"]) {
		t.Errorf("ran %v, want the onnx pipeline %v", ran, Pipelines["onnx"])
	}
}

func TestPrintAndTimePasses(t *testing.T) {
	var dump bytes.Buffer
	g := parseSmallBlock(t)
	_, err := Run(g, &Context{Eval: interp.EvalNode}, Options{
		Target:      "ascend",
		PrintBefore: []string{"fuse-swiglu"},
		PrintAfter:  []string{"decompose-fused"},
		TimePasses:  true,
		Dump:        &dump,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := dump.String()
	for _, want := range []string{"// IR before fuse-swiglu\ngraph @small_block {", "// IR after decompose-fused\ngraph @small_block {", "pass\tseconds\n", "\ndce\t"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "// IR ") != 2 {
		t.Errorf("dump holds %d graphs, want 2", strings.Count(out, "// IR "))
	}
}

func TestDumpDirFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dumps")
	g := parseSmallBlock(t)
	if _, err := Run(g, &Context{Eval: interp.EvalNode}, Options{Target: "onnx", DumpDir: dir}); err != nil {
		t.Fatal(err)
	}

	want := []string{"small_block_00__input.ir"}
	for i, name := range Pipelines["onnx"] {
		want = append(want, fmt.Sprintf("small_block_%02d__%s.ir", i+1, name))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("dump files %v, want %v", got, want)
	}

	for _, name := range got {
		text, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ir.ParseString(string(text)); err != nil {
			t.Errorf("dump file %s does not parse: %v", name, err)
		}
	}
}

func TestPanicInPassBecomesError(t *testing.T) {
	withTestPass(t, &Pass{Name: "test-panic", Doc: "panics", Run: func(*ir.Graph, *Context) error {
		panic("broken invariant")
	}})
	_, err := Run(parseSmallBlock(t), nil, Options{Target: "test-only"})
	if err == nil {
		t.Fatal("a panicking pass gave no error")
	}
	for _, want := range []string{"test-panic", "small_block", "broken invariant"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestPassErrorIsWrapped(t *testing.T) {
	sentinel := errors.New("unsupported thing")
	withTestPass(t, &Pass{Name: "test-error", Doc: "fails", Run: func(*ir.Graph, *Context) error {
		return sentinel
	}})
	_, err := Run(parseSmallBlock(t), nil, Options{Target: "test-only"})
	if !errors.Is(err, sentinel) {
		t.Fatalf("Run returned %v, want an error wrapping the pass's error", err)
	}
	if !strings.Contains(err.Error(), "test-error") {
		t.Errorf("error %q does not name the pass", err)
	}
}

func TestVerifyCatchesBrokenGraph(t *testing.T) {
	withTestPass(t, &Pass{Name: "test-break", Doc: "drops the first node", Run: func(g *ir.Graph, _ *Context) error {
		g.Nodes = g.Nodes[1:]
		return nil
	}})
	if _, err := Run(parseSmallBlock(t), nil, Options{Target: "test-only"}); err != nil {
		t.Fatalf("without Verify the broken graph should pass unnoticed, got %v", err)
	}
	_, err := Run(parseSmallBlock(t), nil, Options{Target: "test-only", Verify: true})
	if err == nil || !strings.Contains(err.Error(), "after pass test-break") {
		t.Fatalf("Run with Verify returned %v, want an error naming the pass", err)
	}
}

func TestHelpListsEveryPass(t *testing.T) {
	help := Help()
	for _, name := range Names() {
		if !strings.Contains(help, "  "+name+" ") {
			t.Errorf("help lacks pass %s", name)
		}
		if Registry[name].Required && !strings.Contains(help, Registry[name].Doc+" (required)") {
			t.Errorf("help does not mark %s as required", name)
		}
	}
	for target := range Pipelines {
		if !strings.Contains(help, strings.Join(Pipelines[target], ", ")) {
			t.Errorf("help lacks the %s pipeline", target)
		}
	}
}

// countOps returns how many nodes of each op g holds.
func countOps(g *ir.Graph) map[string]int {
	counts := map[string]int{}
	for _, n := range g.Nodes {
		counts[n.Op]++
	}
	return counts
}
