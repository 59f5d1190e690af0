package passes

// The golden-test driver. Each file passes/testdata/<pass>/<case>.txtar is
// one case: its comment describes what the case shows, "-- input.ir --" holds
// the graph before the pass, "-- want.ir --" the graph printed after it,
// and an optional "-- flags --" section sets pass options and extra checks,
// one key=value a line:
//
//	max_seq_len=N      Context.MaxSeqLen (fold-rope's table length)
//	fold_limit=N       Context.FoldLimit in bytes (fold-constants)
//	target=NAME        Context.Target
//	eval=none          leave Context.Eval nil (no constant evaluator)
//	head=MODE          Context.Head.Mode (fold-sampling-head: greedy, logits, probs)
//	head_cfg=true      Context.Head.CFG
//	head_cols=S:E      Context.Head.ColStart and ColEnd
//	want_error=TEXT    the pass must fail with an error containing TEXT;
//	                   the case then has no want.ir section
//	compare=TOL        run input and result on the interpreter with the same
//	                   random inputs and require outputs within TOL (0 means
//	                   bit-identical); the graph must not contain params,
//	                   whose data the text form does not carry
//	dims=S:N,...       sizes of symbolic dimensions for compare
//	int_max=N          integer inputs for compare are drawn from [0, N), default 2
//	stat.RULE=N        Context.Stats[RULE] must be N after the pass
//	no_idempotence=REASON
//	                   skip the idempotence check, for a pass that changes
//	                   the graph's interface and so cannot run twice
//	xfail=REASON       the case shows a known bug: it must fail, and the test
//	                   is skipped with REASON; once it passes, the test fails
//	                   and asks for the flag to be removed
//
// The folder name is the pass name, so a folder added for a new pass is
// picked up without changing this file. `go test ./passes -update` rewrites
// the want sections (except in xfail cases, whose want is written by hand).
// Every case also runs the pass on its own want and requires no change,
// as gofmt's idempotence check does.

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

var update = flag.Bool("update", false, "rewrite the want.ir sections of passes/testdata/*/*.txtar")

// goldenCase is one parsed txtar case file.
type goldenCase struct {
	path    string
	pass    string
	archive *txtar.Archive
	input   string
	want    string
	flags   caseFlags
}

// caseFlags are the parsed "-- flags --" section of a case.
type caseFlags struct {
	maxSeqLen int64
	foldLimit int64
	target    string
	noEval    bool
	// head is the fold-sampling-head variant; nil leaves Context.Head nil.
	head *HeadSpec
	// wantError is a substring of the error the pass must return.
	wantError string
	// compare is set when the case requests a numeric check, with the
	// absolute tolerance in tol.
	compare bool
	tol     float64
	dims    map[string]int64
	intMax  int64
	// stats maps a Context.Stats rule to its expected count.
	stats map[string]int
	xfail string
	// noIdempotence, when set, is why the idempotence check is skipped.
	noIdempotence string
}

func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		pass := filepath.Base(dir)
		files, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			name := pass + "/" + strings.TrimSuffix(filepath.Base(file), ".txtar")
			t.Run(name, func(t *testing.T) {
				runGoldenCase(t, file, pass)
			})
		}
	}
}

// TestEveryPassHasCases requires a testdata folder with at least two cases
// for every registered pass, and no folder without a registered pass.
func TestEveryPassHasCases(t *testing.T) {
	for _, name := range Names() {
		files, _ := filepath.Glob(filepath.Join("testdata", name, "*.txtar"))
		if len(files) < 2 {
			t.Errorf("pass %s has %d golden cases; add at least a positive and a negative case under passes/testdata/%s/", name, len(files), name)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, dir := range dirs {
		if _, ok := Registry[filepath.Base(dir)]; !ok {
			t.Errorf("folder %s names no registered pass (known: %s)", dir, strings.Join(Names(), ", "))
		}
	}
}

func runGoldenCase(t *testing.T, path, pass string) {
	gc, err := loadCase(path, pass)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Registry[pass]; !ok {
		t.Fatalf("%s: no registered pass %q; the folder name must be a pass name", path, pass)
	}
	if gc.flags.xfail != "" {
		problems := checkCase(gc, false)
		if len(problems) == 0 {
			t.Fatalf("%s is marked xfail (%s) but passes now; remove the xfail flag", path, gc.flags.xfail)
		}
		t.Skipf("known bug: %s\n%s", gc.flags.xfail, strings.Join(problems, "\n"))
	}
	for _, p := range checkCase(gc, *update) {
		t.Error(p)
	}
}

// checkCase runs every check of a case and returns the failures. With
// rewrite set, a differing want section is written back to the file
// instead of being reported.
func checkCase(gc *goldenCase, rewrite bool) []string {
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}

	in, err := ir.ParseString(gc.input)
	if err != nil {
		return []string{fmt.Sprintf("%s: input.ir:%v", gc.path, err)}
	}
	if err := ir.Verify(in); err != nil {
		return []string{fmt.Sprintf("%s: input.ir fails Verify before the pass: %v", gc.path, err)}
	}
	var before *ir.Graph
	if gc.flags.compare {
		// The pass changes the graph in place; keep a second copy to run.
		before, _ = ir.ParseString(gc.input)
	}

	c := gc.context()
	err = runOne(Registry[gc.pass], in, c)
	switch {
	case gc.flags.wantError != "" && err == nil:
		return []string{fmt.Sprintf("%s: %s succeeded, want an error containing %q", gc.path, gc.pass, gc.flags.wantError)}
	case gc.flags.wantError != "" && !strings.Contains(err.Error(), gc.flags.wantError):
		return []string{fmt.Sprintf("%s: %s failed with %q, want an error containing %q", gc.path, gc.pass, err, gc.flags.wantError)}
	case gc.flags.wantError != "":
		return nil
	case err != nil:
		return []string{fmt.Sprintf("%s: pass failed on input.ir: %v", gc.path, err)}
	}
	if err := ir.Verify(in); err != nil {
		fail("%s: graph fails Verify after %s: %v", gc.path, gc.pass, err)
	}
	got := in.String()

	for rule, want := range gc.flags.stats {
		if c.Stats[rule] != want {
			fail("%s: Stats[%q] = %d, want %d (all stats: %v)", gc.path, rule, c.Stats[rule], want, c.Stats)
		}
	}

	switch {
	case got == gc.want:
	case rewrite:
		if err := gc.rewriteWant(got); err != nil {
			fail("%v", err)
		}
		gc.want = got
	default:
		fail("%s: output of %s differs from want.ir (-want +got):\n%s", gc.path, gc.pass, lineDiff(gc.want, got))
	}

	if gc.flags.compare {
		if err := compareGraphs(before, in, gc.flags.dims, gc.flags.intMax, gc.flags.tol); err != nil {
			fail("%s: interpreter results before and after %s differ: %v", gc.path, gc.pass, err)
		}
	}

	if gc.flags.noIdempotence == "" {
		problems = append(problems, checkIdempotent(gc)...)
	}
	return problems
}

// checkIdempotent runs the pass on the parsed want and requires the same
// text back: a pass that finds more work in its own output is not at a
// fixed point.
func checkIdempotent(gc *goldenCase) []string {
	w, err := ir.ParseString(gc.want)
	if err != nil {
		return []string{fmt.Sprintf("%s: want.ir:%v", gc.path, err)}
	}
	if err := runOne(Registry[gc.pass], w, gc.context()); err != nil {
		return []string{fmt.Sprintf("%s: pass failed on want.ir: %v", gc.path, err)}
	}
	if err := ir.Verify(w); err != nil {
		return []string{fmt.Sprintf("%s: want.ir fails Verify after a second run of %s: %v", gc.path, gc.pass, err)}
	}
	if again := w.String(); again != gc.want {
		return []string{fmt.Sprintf("%s: %s is not idempotent; a second run changes want.ir (-want +got):\n%s", gc.path, gc.pass, lineDiff(gc.want, again))}
	}
	return nil
}

// context builds the pass context that a case requests.
func (gc *goldenCase) context() *Context {
	c := &Context{
		Eval:      interp.EvalNode,
		FoldLimit: gc.flags.foldLimit,
		MaxSeqLen: gc.flags.maxSeqLen,
		Target:    gc.flags.target,
	}
	if gc.flags.noEval {
		c.Eval = nil
	}
	if gc.flags.head != nil {
		spec := *gc.flags.head
		c.Head = &spec
	}
	return c
}

func (gc *goldenCase) rewriteWant(got string) error {
	for i := range gc.archive.Files {
		if gc.archive.Files[i].Name == "want.ir" {
			gc.archive.Files[i].Data = []byte(got)
		}
	}
	if err := os.WriteFile(gc.path, txtar.Format(gc.archive), 0o644); err != nil {
		return fmt.Errorf("rewrite %s: %w", gc.path, err)
	}
	return nil
}

// loadCase reads and checks the layout of one case file.
func loadCase(path, pass string) (*goldenCase, error) {
	a, err := txtar.ParseFile(path)
	if err != nil {
		return nil, err
	}
	gc := &goldenCase{path: path, pass: pass, archive: a}
	if len(bytes.TrimSpace(a.Comment)) == 0 {
		return nil, fmt.Errorf("%s: the comment section is empty; say what the case shows", path)
	}
	var haveInput, haveWant bool
	for _, f := range a.Files {
		switch f.Name {
		case "input.ir":
			gc.input, haveInput = string(f.Data), true
		case "want.ir":
			gc.want, haveWant = string(f.Data), true
		case "flags":
			if gc.flags, err = parseFlags(string(f.Data)); err != nil {
				return nil, fmt.Errorf("%s: flags: %w", path, err)
			}
		default:
			return nil, fmt.Errorf("%s: unexpected section %q; use input.ir, want.ir and flags", path, f.Name)
		}
	}
	switch {
	case !haveInput:
		return nil, fmt.Errorf("%s: the case has no input.ir section", path)
	case gc.flags.wantError != "" && haveWant:
		return nil, fmt.Errorf("%s: a case with want_error has no want.ir section; remove it", path)
	case gc.flags.wantError == "" && !haveWant:
		return nil, fmt.Errorf("%s: the case has no want.ir section (add an empty one and run with -update to fill it)", path)
	}
	return gc, nil
}

// parseFlags reads key=value lines; blank lines and lines starting with #
// are skipped, and an unknown key is an error so that a typo cannot turn
// a check off.
func parseFlags(text string) (caseFlags, error) {
	f := caseFlags{intMax: 2}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return f, fmt.Errorf("line %d: %q is not key=value", i+1, line)
		}
		if err := f.set(strings.TrimSpace(key), strings.TrimSpace(val)); err != nil {
			return f, fmt.Errorf("line %d: %s: %w", i+1, key, err)
		}
	}
	return f, nil
}

func (f *caseFlags) set(key, val string) error {
	var err error
	switch {
	case key == "max_seq_len":
		f.maxSeqLen, err = strconv.ParseInt(val, 10, 64)
	case key == "fold_limit":
		f.foldLimit, err = strconv.ParseInt(val, 10, 64)
	case key == "target":
		f.target = val
	case key == "eval":
		if val != "none" {
			return fmt.Errorf("value %q is invalid; the only value is none", val)
		}
		f.noEval = true
	case key == "head":
		f.headSpec().Mode = val
	case key == "head_cfg":
		f.headSpec().CFG, err = strconv.ParseBool(val)
	case key == "head_cols":
		start, end, ok := strings.Cut(val, ":")
		if !ok {
			return fmt.Errorf("%q is not START:END", val)
		}
		h := f.headSpec()
		if h.ColStart, err = strconv.ParseInt(start, 10, 64); err == nil {
			h.ColEnd, err = strconv.ParseInt(end, 10, 64)
		}
	case key == "want_error":
		f.wantError = val
	case key == "compare":
		f.compare = true
		f.tol, err = strconv.ParseFloat(val, 64)
	case key == "dims":
		f.dims, err = parseDims(val)
	case key == "int_max":
		f.intMax, err = strconv.ParseInt(val, 10, 64)
	case strings.HasPrefix(key, "stat."):
		if f.stats == nil {
			f.stats = map[string]int{}
		}
		f.stats[strings.TrimPrefix(key, "stat.")], err = strconv.Atoi(val)
	case key == "no_idempotence":
		f.noIdempotence = val
	case key == "xfail":
		f.xfail = val
	default:
		return fmt.Errorf("unknown flag; known: max_seq_len, fold_limit, target, eval, head, head_cfg, head_cols, want_error, compare, dims, int_max, stat.RULE, no_idempotence, xfail")
	}
	return err
}

// headSpec returns the case's HeadSpec, creating it on first use.
func (f *caseFlags) headSpec() *HeadSpec {
	if f.head == nil {
		f.head = &HeadSpec{}
	}
	return f.head
}

// parseDims reads "batch:2,seq:5".
func parseDims(val string) (map[string]int64, error) {
	dims := map[string]int64{}
	for _, part := range strings.Split(val, ",") {
		sym, n, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("%q is not SYMBOL:SIZE", part)
		}
		size, err := strconv.ParseInt(n, 10, 64)
		if err != nil || size <= 0 {
			return nil, fmt.Errorf("size of %s is %q; want a positive integer", sym, n)
		}
		dims[sym] = size
	}
	return dims, nil
}

// lineDiff returns a minimal line diff of a and b, from a longest common
// subsequence, with "-" for lines only in a and "+" for lines only in b.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			fmt.Fprintf(&sb, "  %s\n", x[i])
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&sb, "+ %s\n", y[j])
			j++
		default:
			fmt.Fprintf(&sb, "- %s\n", x[i])
			i++
		}
	}
	return sb.String()
}

// sortedKeys returns the keys of m in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maxAbsDiff returns the largest |a[i]-b[i]|, treating two NaNs as equal
// and a NaN against a number as an infinite difference.
func maxAbsDiff(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		switch {
		case math.IsNaN(x) && math.IsNaN(y):
			continue
		case math.IsNaN(x) || math.IsNaN(y):
			return math.Inf(1)
		case x == y:
			continue
		}
		worst = max(worst, math.Abs(x-y))
	}
	return worst
}
