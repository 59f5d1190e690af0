// Package passes holds mmadac's optimisation and lowering passes over the
// IR and the pass manager that runs them as named, per-target pipelines.
//
// # Pass pipeline
//
// Every pass has a kebab-case name, a flag saying whether a pipeline may
// skip it, and a one-line description; the CLI help for --print-ir-after,
// --disable-pass and the others is generated from this table. Ordering
// rules ("A must run before B, because ...") are data too, checked by a
// test against every pipeline.
//
// # Error handling
//
// A pass returns an error for an expected failure. A broken invariant is a
// bug: the pass panics, and Run recovers the panic into an error that names
// the pass and the graph. With Options.Verify set (always in tests) the
// graph is verified after every pass.
package passes

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mmadac/mmadac/ir"
)

// Pass is one named transformation of a graph.
type Pass struct {
	Name string
	// Required passes cannot be disabled: later stages rely on them.
	Required bool
	Doc      string
	Run      func(g *ir.Graph, c *Context) error
}

// Context carries what passes need besides the graph.
type Context struct {
	// Eval runs one node on constant operands; fold-constants needs it.
	// The caller injects the interpreter's kernel here, so that this
	// package does not depend on a backend.
	Eval func(n *ir.Node, args []*ir.Tensor) ([]*ir.Tensor, error)
	// FoldLimit is the largest constant, in bytes, that fold-constants
	// creates. Weights are never folded whatever the limit.
	FoldLimit int64
	// MaxSeqLen is the longest sequence the folded RoPE tables cover.
	MaxSeqLen int64
	// Target is "onnx" or "ascend".
	Target string
	// Head, when set, makes fold-sampling-head produce that variant.
	Head *HeadSpec
	// Stats counts rewrites per pass and rule, for --pass-stats output.
	Stats map[string]int
}

func (c *Context) count(rule string, n int) {
	if c.Stats == nil {
		c.Stats = map[string]int{}
	}
	c.Stats[rule] += n
}

// Registry lists every pass by name.
var Registry = map[string]*Pass{}

func register(p *Pass) {
	if _, dup := Registry[p.Name]; dup {
		panic("passes: duplicate pass " + p.Name)
	}
	Registry[p.Name] = p
}

// Pipelines gives the ordered pass names per target.
var Pipelines = map[string][]string{
	"onnx": {
		"fold-sampling-head", "fold-rope", "fold-constants", "cse", "fuse-rms-norm", "fuse-swiglu", "fuse-attention", "fuse-rope", "sink-gather", "dce",
	},
	"ascend": {
		"fold-sampling-head", "fold-rope", "fold-constants", "cse", "fuse-rms-norm", "fuse-swiglu", "fuse-attention",
		"fuse-rope", "sink-gather", "decompose-fused", "legalize-ascend", "dce",
	},
}

// Order lists "before must run before after" rules with their reason.
var Order = []struct{ Before, After, Why string }{
	{"fold-sampling-head", "fold-constants", "the folded head adds nodes that later passes simplify"},
	{"fold-sampling-head", "cse", "the folded head's gathers share operands with the rest of the graph"},
	{"fold-rope", "fold-constants", "the RoPE tables become constants that later folds may use"},
	{"cse", "fuse-attention", "the attention pattern is matched once per layer after duplicates merge"},
	{"fuse-rms-norm", "fuse-attention", "attention fusion expects normalised q, k, v inputs in their final form"},
	{"fuse-attention", "decompose-fused", "fused ops must exist before they are lowered"},
	{"fold-sampling-head", "sink-gather", "the folded head adds the gather of the block's positions"},
	{"fold-rope", "fuse-rope", "fuse-rope halves the constant tables fold-rope writes"},
	{"cse", "fuse-rope", "the layers' q and k then share one table, which is halved once"},
	{"fuse-rope", "sink-gather", "a gather moves through rope as one op, gathering its tables' rows too"},
	{"fuse-rope", "decompose-fused", "fused ops must exist before they are lowered"},
	{"fuse-attention", "sink-gather", "a gather moves through attention as one op, not through its matmul, softmax and matmul"},
	{"fuse-rms-norm", "sink-gather", "a gather moves through rms_norm as one op, not through its mean over the last axis"},
	{"sink-gather", "decompose-fused", "a gather moves through attention as one op, not through its matmul, softmax and matmul"},
	{"sink-gather", "dce", "it leaves the full-size ops it bypassed dead"},
	{"fuse-swiglu", "decompose-fused", "fused ops must exist before they are lowered"},
	{"fuse-rms-norm", "decompose-fused", "fused ops must exist before they are lowered"},
	{"decompose-fused", "dce", "decomposition leaves the fused nodes dead"},
	{"decompose-fused", "legalize-ascend", "legalize-ascend rejects fused ops"},
	{"fold-constants", "legalize-ascend", "folded constants are converted and clamped"},
	{"legalize-ascend", "dce", "it leaves converted constants dead"},
}

// Options control a pipeline run and its dumps.
type Options struct {
	Target string
	// Disable names passes to skip; a required pass is rejected.
	Disable []string
	// None runs no pass at all (the unoptimised graph).
	None bool
	// PrintBefore and PrintAfter name passes around which the graph is
	// printed to Dump; PrintAfterAll prints after every pass.
	PrintBefore, PrintAfter []string
	PrintAfterAll           bool
	Dump                    io.Writer
	// DumpDir receives one numbered file per pass.
	DumpDir string
	// TimePasses reports each pass's duration to Dump as TSV.
	TimePasses bool
	// Verify checks the graph after every pass.
	Verify bool
}

// PassTiming is one pass's run time.
type PassTiming struct {
	Name    string
	Elapsed time.Duration
}

// Run applies the target's pipeline to g in place.
func Run(g *ir.Graph, c *Context, o Options) (timings []PassTiming, err error) {
	if o.None {
		return nil, nil
	}
	target := o.Target
	if target == "" {
		target = "onnx"
	}
	names, ok := Pipelines[target]
	if !ok {
		return nil, fmt.Errorf("unknown target %q; use onnx or ascend", target)
	}
	disabled := map[string]bool{}
	for _, d := range o.Disable {
		p, ok := Registry[d]
		if !ok {
			return nil, fmt.Errorf("--disable-pass: unknown pass %q (known: %s)", d, strings.Join(Names(), ", "))
		}
		if p.Required {
			return nil, fmt.Errorf("--disable-pass: pass %s is required and cannot be disabled", d)
		}
		disabled[d] = true
	}
	if err := checkNames(o.PrintBefore); err != nil {
		return nil, fmt.Errorf("--print-ir-before: %w", err)
	}
	if err := checkNames(o.PrintAfter); err != nil {
		return nil, fmt.Errorf("--print-ir-after: %w", err)
	}
	if c == nil {
		c = &Context{}
	}
	c.Target = target
	if o.DumpDir != "" {
		if err := os.MkdirAll(o.DumpDir, 0o755); err != nil {
			return nil, err
		}
		if err := dumpFile(o.DumpDir, g, 0, "input"); err != nil {
			return nil, err
		}
	}
	for i, name := range names {
		if disabled[name] {
			slog.Debug("pass disabled", "pass", name)
			continue
		}
		p := Registry[name]
		if contains(o.PrintBefore, name) && o.Dump != nil {
			fmt.Fprintf(o.Dump, "// IR before %s\n%s", name, g)
		}
		start := time.Now()
		if err := runOne(p, g, c); err != nil {
			return timings, err
		}
		el := time.Since(start)
		timings = append(timings, PassTiming{name, el})
		if o.Verify {
			if err := ir.Verify(g); err != nil {
				return timings, fmt.Errorf("after pass %s: %w", name, err)
			}
		}
		if (o.PrintAfterAll || contains(o.PrintAfter, name)) && o.Dump != nil {
			fmt.Fprintf(o.Dump, "// IR after %s\n%s", name, g)
		}
		if o.DumpDir != "" {
			if err := dumpFile(o.DumpDir, g, i+1, name); err != nil {
				return timings, err
			}
		}
	}
	if o.TimePasses && o.Dump != nil {
		fmt.Fprintf(o.Dump, "pass\tseconds\n")
		for _, t := range timings {
			fmt.Fprintf(o.Dump, "%s\t%.6f\n", t.Name, t.Elapsed.Seconds())
		}
	}
	return timings, nil
}

// runOne runs a pass and turns a panic into an error naming the pass.
func runOne(p *Pass, g *ir.Graph, c *Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pass %s on graph %s: internal error: %v", p.Name, g.Name, r)
		}
	}()
	if err := p.Run(g, c); err != nil {
		return fmt.Errorf("pass %s on graph %s: %w", p.Name, g.Name, err)
	}
	return nil
}

func dumpFile(dir string, g *ir.Graph, i int, name string) error {
	path := filepath.Join(dir, fmt.Sprintf("%s_%02d__%s.ir", g.Name, i, name))
	return os.WriteFile(path, []byte(g.String()), 0o644)
}

func checkNames(names []string) error {
	for _, n := range names {
		if _, ok := Registry[n]; !ok {
			return fmt.Errorf("unknown pass %q (known: %s)", n, strings.Join(Names(), ", "))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Names returns every registered pass name, sorted.
func Names() []string {
	out := make([]string, 0, len(Registry))
	for n := range Registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Help describes every pass and the pipelines, for the CLI help text.
func Help() string {
	var sb strings.Builder
	sb.WriteString("Passes:\n")
	for _, n := range Names() {
		p := Registry[n]
		req := ""
		if p.Required {
			req = " (required)"
		}
		fmt.Fprintf(&sb, "  %-18s %s%s\n", n, p.Doc, req)
	}
	targets := make([]string, 0, len(Pipelines))
	for t := range Pipelines {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	sb.WriteString("Pipelines:\n")
	for _, t := range targets {
		fmt.Fprintf(&sb, "  %-8s %s\n", t, strings.Join(Pipelines[t], ", "))
	}
	return sb.String()
}
