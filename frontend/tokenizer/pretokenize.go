package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dlclark/regexp2/v2"
)

// preTokenizer turns the splits of a text into smaller splits. Each split is
// processed on its own, and empty splits are dropped.
type preTokenizer interface {
	preTokenize(splits []string) ([]string, error)
}

// gpt2Pattern is the split regex of the ByteLevel pre-tokenizer when its
// use_regex option is set.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// newPreTokenizer builds the pre-tokenizer described by raw; nil when absent.
func newPreTokenizer(raw json.RawMessage, where string) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, err := parseComponent(raw, where)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		var seq sequencePreTokenizer
		for i, item := range c.Pretokenizers {
			p, err := newPreTokenizer(item, fmt.Sprintf("%s.pretokenizers[%d]", where, i))
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	case "Split":
		return newSplit(c, where)
	case "ByteLevel":
		b := &byteLevelPreTokenizer{addPrefixSpace: c.AddPrefixSpace}
		// use_regex defaults to true in the Rust library.
		if c.UseRegex == nil || *c.UseRegex {
			re, err := compileRegex(gpt2Pattern, where)
			if err != nil {
				return nil, err
			}
			b.regex = re
		}
		return b, nil
	default:
		return nil, fmt.Errorf("%s: pre-tokenizer type %q is not supported (supported: Sequence, Split, ByteLevel)", where, c.Type)
	}
}

type sequencePreTokenizer []preTokenizer

func (s sequencePreTokenizer) preTokenize(splits []string) ([]string, error) {
	var err error
	for _, p := range s {
		if splits, err = p.preTokenize(splits); err != nil {
			return nil, err
		}
	}
	return splits, nil
}

// splitBehavior selects what happens to the pieces that a Split pattern matches.
type splitBehavior int

const (
	splitRemoved            splitBehavior = iota // drop the matches
	splitIsolated                                // keep each match as its own split
	splitMergedWithPrevious                      // append each match to the split before it
	splitMergedWithNext                          // prepend each match to the split after it
	splitContiguous                              // join adjacent matches into one split
)

var splitBehaviors = map[string]splitBehavior{
	"Removed":            splitRemoved,
	"Isolated":           splitIsolated,
	"MergedWithPrevious": splitMergedWithPrevious,
	"MergedWithNext":     splitMergedWithNext,
	"Contiguous":         splitContiguous,
}

// splitPreTokenizer is the Split pre-tokenizer: a regex or literal pattern
// and what to do with its matches.
type splitPreTokenizer struct {
	regex    *regexp2.Regexp // nil for a literal pattern
	literal  string
	behavior splitBehavior
	invert   bool // the pattern matches the pieces to keep, not the delimiters
}

func newSplit(c componentJSON, where string) (*splitPreTokenizer, error) {
	behavior, ok := splitBehaviors[c.Behavior]
	if !ok {
		return nil, fmt.Errorf("%s: Split behavior %q is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous", where, c.Behavior)
	}
	s := &splitPreTokenizer{behavior: behavior, invert: c.Invert}
	switch {
	case c.Pattern == nil:
		return nil, fmt.Errorf("%s: Split has no pattern", where)
	case c.Pattern.Regex != nil:
		re, err := compileRegex(*c.Pattern.Regex, where)
		if err != nil {
			return nil, err
		}
		s.regex = re
	case c.Pattern.String != nil:
		if *c.Pattern.String == "" {
			return nil, fmt.Errorf("%s: Split has an empty string pattern", where)
		}
		s.literal = *c.Pattern.String
	default:
		return nil, fmt.Errorf("%s: Split pattern needs a \"Regex\" or a \"String\"", where)
	}
	return s, nil
}

// compileRegex compiles a pattern of tokenizer.json. The default (.NET-like)
// mode of regexp2 gives \s, \p{..} and (?i:..) the meaning that Oniguruma
// gives them in the Rust library. The backtracking stack limit is lifted so
// that a long input cannot make a match fail. Matches never time out, since
// regexp2's default timeout is infinite.
func compileRegex(pattern, where string) (*regexp2.Regexp, error) {
	re, err := regexp2.Compile(pattern, regexp2.OptionMaxBacktrackingStackSize(-1))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot compile regex %q: %w", where, pattern, err)
	}
	return re, nil
}

// span is a byte range of a split and whether the pattern matched it.
type span struct {
	start, end int
	match      bool
}

// findSpans covers s with alternating non-matched and matched spans.
func (p *splitPreTokenizer) findSpans(s string) ([]span, error) {
	var bounds [][]int
	if p.regex != nil {
		var err error
		bounds, err = p.regex.FindAllStringIndex(s, -1)
		if err != nil {
			return nil, fmt.Errorf("split regex %q: %w", p.regex.String(), err)
		}
	} else {
		for from := 0; ; {
			i := strings.Index(s[from:], p.literal)
			if i < 0 {
				break
			}
			start := from + i
			bounds = append(bounds, []int{start, start + len(p.literal)})
			from = start + len(p.literal)
		}
	}
	spans := make([]span, 0, 2*len(bounds)+1)
	prev := 0
	for _, b := range bounds {
		if b[0] > prev {
			spans = append(spans, span{prev, b[0], false})
		}
		spans = append(spans, span{b[0], b[1], true})
		prev = b[1]
	}
	if prev < len(s) {
		spans = append(spans, span{prev, len(s), false})
	}
	return spans, nil
}

func (p *splitPreTokenizer) preTokenize(splits []string) ([]string, error) {
	out := make([]string, 0, len(splits))
	for _, s := range splits {
		spans, err := p.findSpans(s)
		if err != nil {
			return nil, err
		}
		if p.invert {
			for i := range spans {
				spans[i].match = !spans[i].match
			}
		}
		for _, sp := range p.group(spans) {
			if sp.end > sp.start {
				out = append(out, s[sp.start:sp.end])
			}
		}
	}
	return out, nil
}

// group applies the split behavior to the spans and returns the kept ones.
func (p *splitPreTokenizer) group(spans []span) []span {
	var out []span
	switch p.behavior {
	case splitIsolated:
		return spans
	case splitRemoved:
		for _, sp := range spans {
			if !sp.match {
				out = append(out, sp)
			}
		}
	case splitContiguous:
		for i, sp := range spans {
			if i > 0 && sp.match == spans[i-1].match {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, sp)
			}
		}
	case splitMergedWithPrevious:
		previousMatch := false
		for _, sp := range spans {
			if sp.match && !previousMatch && len(out) > 0 {
				out[len(out)-1].end = sp.end
			} else {
				out = append(out, sp)
			}
			previousMatch = sp.match
		}
	case splitMergedWithNext:
		previousMatch := false
		for i := len(spans) - 1; i >= 0; i-- {
			sp := spans[i]
			if sp.match && !previousMatch && len(out) > 0 {
				out[len(out)-1].start = sp.start
			} else {
				out = append(out, sp)
			}
			previousMatch = sp.match
		}
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// byteLevelPreTokenizer maps every byte of the text to one printable
// character (the GPT-2 table), after an optional space prefix and regex split.
type byteLevelPreTokenizer struct {
	addPrefixSpace bool
	regex          *regexp2.Regexp // nil when use_regex is false
}

func (b *byteLevelPreTokenizer) preTokenize(splits []string) ([]string, error) {
	out := make([]string, 0, len(splits))
	for _, s := range splits {
		if s == "" {
			continue
		}
		if b.addPrefixSpace && s[0] != ' ' {
			s = " " + s
		}
		pieces := []string{s}
		if b.regex != nil {
			bounds, err := b.regex.FindAllStringIndex(s, -1)
			if err != nil {
				return nil, fmt.Errorf("byte-level regex: %w", err)
			}
			// Isolated behavior: matches and the text between them are splits.
			pieces = pieces[:0]
			prev := 0
			for _, m := range bounds {
				if m[0] > prev {
					pieces = append(pieces, s[prev:m[0]])
				}
				pieces = append(pieces, s[m[0]:m[1]])
				prev = m[1]
			}
			if prev < len(s) {
				pieces = append(pieces, s[prev:])
			}
		}
		for _, piece := range pieces {
			if piece != "" {
				out = append(out, byteLevelEncode(piece))
			}
		}
	}
	return out, nil
}

// byteToRune is the GPT-2 byte-to-character table: the printable bytes
// '!'..'~', '¡'..'¬' and '®'..'ÿ' map to themselves, the other 68 bytes to
// U+0100 onwards in byte order. runeToByte is its inverse.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var table [256]rune
	inverse := make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			table[b] = rune(b)
		} else {
			table[b] = next
			next++
		}
		inverse[table[b]] = byte(b)
	}
	return table, inverse
}()

// byteLevelEncode replaces each byte of s with its table character.
func byteLevelEncode(s string) string {
	var sb strings.Builder
	sb.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteToRune[s[i]])
	}
	return sb.String()
}
