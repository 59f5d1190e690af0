package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func loadTiny(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load(filepath.Join("testdata", "tiny-bytelevel", "tokenizer.json"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tok
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nothing", "tokenizer.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing file) error = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestLoadFolderWithoutFile(t *testing.T) {
	_, err := Load(t.TempDir())
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(empty folder) error = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestLoadFolder(t *testing.T) {
	tok, err := Load(filepath.Join("testdata", "tiny-bytelevel"))
	if err != nil {
		t.Fatalf("Load(folder): %v", err)
	}
	if tok.VocabSize() == 0 {
		t.Fatal("VocabSize() = 0 after loading a folder")
	}
}

// tinyJSON is a minimal valid tokenizer.json; the error tests below replace
// one part of it.
const tinyJSON = `{
 "added_tokens": [{"id": 5, "content": "<s>", "special": true}],
 "normalizer": null,
 "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": false},
 "decoder": null,
 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "<unk>": 4}, "merges": ["a b"]}
}`

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"invalid JSON", `"added_tokens"`, `added_tokens`, "invalid tokenizer.json"},
		{"model type", `"type": "BPE"`, `"type": "WordPiece"`, `model type "WordPiece" is not supported`},
		{"dropout", `"type": "BPE",`, `"type": "BPE", "dropout": 0.1,`, "dropout"},
		{"empty vocab", `"vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "<unk>": 4}`, `"vocab": {}`, "model.vocab is missing or empty"},
		{"merge token", `"merges": ["a b"]`, `"merges": ["a x"]`, `token "x" is not in model.vocab`},
		{"merged token", `"merges": ["a b"]`, `"merges": ["b a"]`, `merged token "ba" is not in model.vocab`},
		{"merge format", `"merges": ["a b"]`, `"merges": ["ab"]`, "expected two tokens separated by one space"},
		{"unk token", `"type": "BPE",`, `"type": "BPE", "unk_token": "<?>",`, `model.unk_token "<?>" is not in model.vocab`},
		{"pre-tokenizer type", `"type": "Split"`, `"type": "Whitespace"`, `pre-tokenizer type "Whitespace" is not supported`},
		{"split behavior", `"behavior": "Removed"`, `"behavior": "Dropped"`, `Split behavior "Dropped"`},
		{"split regex", `{"String": " "}`, `{"Regex": "(("}`, "cannot compile regex"},
		{"normalizer type", `"normalizer": null`, `"normalizer": {"type": "Lowercase"}`, `normalizer type "Lowercase" is not supported`},
		{"decoder type", `"decoder": null`, `"decoder": {"type": "WordPiece"}`, `decoder type "WordPiece" is not supported`},
		{"component type", `"decoder": null`, `"decoder": {}`, `decoder: missing "type"`},
		{"added id clash", `"id": 5, "content": "<s>"`, `"id": 1, "content": "<s>"`, `"<s>" has id 1, which model.vocab gives to "b"`},
		{"added id mismatch", `"id": 5, "content": "<s>"`, `"id": 6, "content": "ab"`, `"ab" has id 6 but model.vocab gives it id 2`},
		{"added empty", `"content": "<s>"`, `"content": ""`, "has empty content"},
		{"no model", `"model": {`, `"other": {`, `tokenizer.json has no "model"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(tinyJSON, c.old) {
				t.Fatalf("test case does not apply: %q is not in tinyJSON", c.old)
			}
			_, err := Parse([]byte(strings.Replace(tinyJSON, c.old, c.new, 1)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestUnknownTokens(t *testing.T) {
	withUnk := strings.Replace(tinyJSON, `"type": "BPE",`, `"type": "BPE", "unk_token": "<unk>",`, 1)
	tok, err := Parse([]byte(withUnk))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := tok.Encode("ab xyc"), []int64{2, 4, 4, 3}; !slices.Equal(got, want) {
		t.Errorf("Encode without fuse_unk = %v, want %v", got, want)
	}
	fused, err := Parse([]byte(strings.Replace(withUnk, `"type": "BPE",`, `"type": "BPE", "fuse_unk": true,`, 1)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := fused.Encode("ab xyc"), []int64{2, 4, 3}; !slices.Equal(got, want) {
		t.Errorf("Encode with fuse_unk = %v, want %v", got, want)
	}
	noUnk, err := Parse([]byte(tinyJSON))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	// Without an unknown token, unknown characters are dropped.
	if got, want := noUnk.Encode("ab xyc"), []int64{2, 3}; !slices.Equal(got, want) {
		t.Errorf("Encode without unk_token = %v, want %v", got, want)
	}
}

// TestSplitLookahead checks the one rule that Go's regexp cannot express:
// \s+(?!\S) leaves the last whitespace character of a run for the word after
// it, and keeps a run that ends the text whole.
func TestSplitLookahead(t *testing.T) {
	tok := loadTiny(t)
	got, err := tok.preTokenizer.preTokenize([]string{"a  b\t\t c\n\n  d   "})
	if err != nil {
		t.Fatalf("preTokenize: %v", err)
	}
	// Ġ, ĉ and Ċ are the byte-level forms of space, tab and newline.
	want := []string{"a", "Ġ", "Ġb", "ĉĉ", "Ġc", "ĊĊ", "Ġ", "Ġd", "ĠĠĠ"}
	if !slices.Equal(got, want) {
		t.Errorf("preTokenize = %q, want %q", got, want)
	}
}

func TestSplitBehaviors(t *testing.T) {
	cases := map[string][]string{
		"Removed":            {"the", "final", "countdown"},
		"Isolated":           {"the", "-", "final", "-", "-", "countdown"},
		"MergedWithPrevious": {"the-", "final-", "-", "countdown"},
		"MergedWithNext":     {"the", "-final", "-", "-countdown"},
		"Contiguous":         {"the", "-", "final", "--", "countdown"},
	}
	literal := "-"
	for behavior, want := range cases {
		s, err := newSplit(componentJSON{Type: "Split", Behavior: behavior, Pattern: &patternJSON{String: &literal}}, "test")
		if err != nil {
			t.Fatalf("newSplit(%s): %v", behavior, err)
		}
		got, err := s.preTokenize([]string{"the-final--countdown"})
		if err != nil {
			t.Fatalf("preTokenize: %v", err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", behavior, got, want)
		}
	}
}

func TestSplitInvert(t *testing.T) {
	pattern := `\w+`
	s, err := newSplit(componentJSON{Type: "Split", Behavior: "Removed", Invert: true, Pattern: &patternJSON{Regex: &pattern}}, "test")
	if err != nil {
		t.Fatalf("newSplit: %v", err)
	}
	got, err := s.preTokenize([]string{"Hello, there  you"})
	if err != nil {
		t.Fatalf("preTokenize: %v", err)
	}
	if want := []string{"Hello", "there", "you"}; !slices.Equal(got, want) {
		t.Errorf("inverted Removed split = %q, want %q", got, want)
	}
}

// TestLossyUTF8 checks the replacement of maximal invalid subsequences, the
// policy of Rust's String::from_utf8_lossy.
func TestLossyUTF8(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\xffb", "a\uFFFDb"},
		{"\xe2\x82", "\uFFFD"},                           // truncated 3-byte sequence
		{"\xf0\x9f\x98x", "\uFFFDx"},                     // truncated 4-byte sequence
		{"\xc0\xaf", "\uFFFD\uFFFD"},                     // overlong lead byte
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},           // surrogate
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"}, // above U+10FFFF
		{"\xe2\x82\xac\xe2", "€\uFFFD"},
		{"\uFFFD", "\uFFFD"},
	}
	for _, c := range cases {
		if got := string(appendLossy(nil, []byte(c.in))); got != c.want {
			t.Errorf("appendLossy(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEncodeInvalidUTF8(t *testing.T) {
	tok := loadTiny(t)
	got := tok.Encode("ok\xe2\x82 end")
	want := tok.Encode("ok\uFFFD end")
	if !slices.Equal(got, want) {
		t.Errorf("Encode(invalid UTF-8) = %v, want the ids of the U+FFFD text %v", got, want)
	}
}

func TestSpecialTokens(t *testing.T) {
	tok := loadTiny(t)
	eot, ok := tok.TokenToID("<|eot_id|>")
	if !ok {
		t.Fatal("TokenToID(<|eot_id|>) not found")
	}
	if !tok.IsSpecial(eot) {
		t.Errorf("IsSpecial(%d) = false for <|eot_id|>", eot)
	}
	think, _ := tok.TokenToID("<think>")
	if tok.IsSpecial(think) {
		t.Errorf("IsSpecial(%d) = true for the non-special added token <think>", think)
	}
	if tok.IsSpecial(0) {
		t.Error("IsSpecial(0) = true for a model token")
	}
	ids := tok.Encode("hi<|eot_id|>")
	if ids[len(ids)-1] != eot {
		t.Errorf("Encode(hi<|eot_id|>) = %v, want it to end with %d", ids, eot)
	}
	if got := tok.Decode(ids, true); got != "hi" {
		t.Errorf("Decode(skip special) = %q, want %q", got, "hi")
	}
	if got := tok.Decode(append(ids, -1, 1<<40), false); got != "hi<|eot_id|>" {
		t.Errorf("Decode with unknown ids = %q, want them left out", got)
	}
	if _, ok := tok.IDToToken(-1); ok {
		t.Error("IDToToken(-1) found a token")
	}
}

func TestDecoderStripReplace(t *testing.T) {
	d, err := newDecoder([]byte(`{"type": "Sequence", "decoders": [
		{"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
		{"type": "Fuse"},
		{"type": "Strip", "content": " ", "start": 1, "stop": 0}]}`), "decoder")
	if err != nil {
		t.Fatalf("newDecoder: %v", err)
	}
	got := strings.Join(d.decodeChain([]string{"▁Hello", "▁world"}), "")
	if got != "Hello world" {
		t.Errorf("decode = %q, want %q", got, "Hello world")
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := loadTiny(t)
	ref := loadReference(t, "tiny-bytelevel")
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(ref.Cases))
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range ref.Cases {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
					errs <- c.Name
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("concurrent Encode differs on case %s", name)
	}
}

// BenchmarkEncodeFile encodes the file named by MMADAC_TOKENIZER_BENCH_TEXT
// with the Llama 3 tokenizer from the npm cache; scripts/tokenizer-ref/gen.js
// --bench times the Rust library on the same file.
func BenchmarkEncodeFile(b *testing.B) {
	file := os.Getenv("MMADAC_TOKENIZER_BENCH_TEXT")
	if file == "" {
		b.Skip("set MMADAC_TOKENIZER_BENCH_TEXT to a text file")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	for name, rel := range realTokenizers {
		b.Run(name, func(b *testing.B) {
			path := npmCacheFile(b, rel)
			tok, err := Load(path)
			if err != nil {
				b.Skipf("%s: %v", path, err)
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				n := len(tok.Encode(string(data)))
				b.ReportMetric(float64(n), "tokens")
			}
		})
	}
}

// TestEncodeLongRuns encodes runs far longer than regexp2's default
// backtracking stack limit of 100000 slots, which a greedy \s+ or \p{L}+
// fills on one long match.
func TestEncodeLongRuns(t *testing.T) {
	tok := loadTiny(t)
	for _, text := range []string{
		strings.Repeat(" ", 300_000) + "x",
		strings.Repeat("a", 300_000),
		strings.Repeat("\n", 300_000),
		strings.Repeat(" \t", 150_000) + "end",
	} {
		ids := tok.Encode(text)
		if got := tok.Decode(ids, false); got != text {
			t.Errorf("round trip of a %d-byte run starting %q changed the text (%d bytes back)", len(text), text[:2], len(got))
		}
	}
}
