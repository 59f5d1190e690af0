package tokenizer

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// FileName is the file that Load reads when it is given a folder.
const FileName = "tokenizer.json"

// Tokenizer encodes text to token ids and decodes ids to text as described
// by one tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	model        *bpeModel
	normalizer   normalizer   // nil when the file has none
	preTokenizer preTokenizer // nil when the file has none
	decoder      decoder      // nil when the file has none

	added       map[int64]*addedToken // by id
	addedByText map[string]*addedToken
	// rawMatcher finds the added tokens that match the text as written;
	// normMatcher those marked "normalized", in the normalized text.
	rawMatcher, normMatcher *tokenMatcher

	idToToken []string // model vocabulary by id; "" where no token has the id
	vocabSize int      // distinct tokens of the model vocabulary and the added tokens
}

// Load reads a tokenizer.json file, or the tokenizer.json inside the folder
// path. A missing file gives an error that wraps os.ErrNotExist.
func Load(path string) (*Tokenizer, error) {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		path = filepath.Join(path, FileName)
	}
	start := time.Now()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	slog.Debug("tokenizer loaded", "path", path, "vocab_size", t.vocabSize,
		"added_tokens", len(t.added), "elapsed", time.Since(start))
	return t, nil
}

// Parse builds a Tokenizer from the contents of a tokenizer.json file.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("invalid tokenizer.json: %w", err)
	}
	if isNull(f.Model) {
		return nil, fmt.Errorf("tokenizer.json has no \"model\"")
	}

	model, err := newBPE(f.Model)
	if err != nil {
		return nil, err
	}

	t := &Tokenizer{model: model}
	if t.normalizer, err = newNormalizer(f.Normalizer, "normalizer"); err != nil {
		return nil, err
	}
	if t.preTokenizer, err = newPreTokenizer(f.PreTokenizer, "pre_tokenizer"); err != nil {
		return nil, err
	}
	if t.decoder, err = newDecoder(f.Decoder, "decoder"); err != nil {
		return nil, err
	}

	t.buildIDTable()
	if err := t.addTokens(f.AddedTokens); err != nil {
		return nil, err
	}
	t.vocabSize = len(t.model.vocab)
	for _, a := range t.added {
		if _, ok := t.model.vocab[a.content]; !ok {
			t.vocabSize++
		}
	}
	return t, nil
}

// addTokens registers the added tokens and builds the two matchers.
func (t *Tokenizer) addTokens(tokens []addedTokenJSON) error {
	t.added = make(map[int64]*addedToken, len(tokens))
	t.addedByText = make(map[string]*addedToken, len(tokens))
	t.rawMatcher, t.normMatcher = newTokenMatcher(), newTokenMatcher()
	for i, a := range tokens {
		if a.Content == "" {
			return fmt.Errorf("added_tokens[%d] (id %d) has empty content", i, a.ID)
		}
		if a.ID < 0 || a.ID > 1<<31-1 {
			return fmt.Errorf("added_tokens[%d] %q has id %d outside [0, 2^31)", i, a.Content, a.ID)
		}
		if other, ok := t.added[a.ID]; ok {
			return fmt.Errorf("added_tokens[%d] %q reuses id %d of %q", i, a.Content, a.ID, other.content)
		}
		if modelID, ok := t.model.vocab[a.Content]; ok && modelID != a.ID {
			return fmt.Errorf("added_tokens[%d] %q has id %d but model.vocab gives it id %d", i, a.Content, a.ID, modelID)
		}
		if modelTok, ok := t.modelToken(a.ID); ok && modelTok != a.Content {
			return fmt.Errorf("added_tokens[%d] %q has id %d, which model.vocab gives to %q", i, a.Content, a.ID, modelTok)
		}
		tok := &addedToken{
			id:         a.ID,
			content:    a.Content,
			singleWord: a.SingleWord,
			lstrip:     a.LStrip,
			rstrip:     a.RStrip,
			special:    a.Special,
		}
		t.added[a.ID] = tok
		t.addedByText[a.Content] = tok
		if a.Normalized {
			pattern := a.Content
			if t.normalizer != nil {
				pattern = t.normalizer.normalize(pattern)
			}
			t.normMatcher.add(pattern, tok)
		} else {
			t.rawMatcher.add(a.Content, tok)
		}
	}
	return nil
}

// buildIDTable indexes the model vocabulary by id.
func (t *Tokenizer) buildIDTable() {
	maxID := int64(-1)
	for _, id := range t.model.vocab {
		maxID = max(maxID, id)
	}
	t.idToToken = make([]string, maxID+1)
	for tok, id := range t.model.vocab {
		t.idToToken[id] = tok
	}
}

// Encode returns the token ids of text. It adds no special tokens of its
// own, but special and added tokens written in the text (such as
// "<|eot_id|>") become their ids.
func (t *Tokenizer) Encode(text string) []int64 {
	text = validUTF8(text)
	ids := make([]int64, 0, len(text)/3+1)
	for _, seg := range t.rawMatcher.split(text) {
		if seg.id >= 0 {
			ids = append(ids, seg.id)
			continue
		}
		normalized := seg.text
		if t.normalizer != nil {
			normalized = t.normalizer.normalize(normalized)
		}
		for _, inner := range t.normMatcher.split(normalized) {
			if inner.id >= 0 {
				ids = append(ids, inner.id)
				continue
			}
			ids = t.encodeText(ids, inner.text)
		}
	}
	return ids
}

// encodeText pre-tokenizes normalized text without added tokens and appends
// the ids of its words.
func (t *Tokenizer) encodeText(ids []int64, text string) []int64 {
	if text == "" {
		return ids
	}
	words := []string{text}
	if t.preTokenizer != nil {
		var err error
		words, err = t.preTokenizer.preTokenize(words)
		if err != nil {
			// regexp2 returns errors only for a match timeout or a
			// backtracking stack limit, and compileRegex sets neither, so
			// an error here is a bug in the regex engine.
			panic(fmt.Sprintf("tokenizer: pre-tokenizer failed: %v", err))
		}
	}
	for _, w := range words {
		ids = t.model.tokenize(ids, w)
	}
	return ids
}

// Decode returns the text of ids. With skipSpecial, tokens marked special
// are left out; ids that no token has are always left out, as the Rust
// library does.
func (t *Tokenizer) Decode(ids []int64, skipSpecial bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if a, ok := t.added[id]; ok {
			if !(skipSpecial && a.special) {
				tokens = append(tokens, a.content)
			}
			continue
		}
		// Load made sure that a model token with the text of an added token
		// has the same id, so the check above covers every special token.
		if tok, ok := t.modelToken(id); ok {
			tokens = append(tokens, tok)
		}
	}
	if t.decoder == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.decoder.decodeChain(tokens), "")
}

func (t *Tokenizer) modelToken(id int64) (string, bool) {
	if id < 0 || id >= int64(len(t.idToToken)) || t.idToToken[id] == "" {
		return "", false
	}
	return t.idToToken[id], true
}

// TokenToID returns the id of a token string (an added token or a model
// token, in the model's own spelling such as "Ġhello" for byte-level BPE).
func (t *Tokenizer) TokenToID(tok string) (int64, bool) {
	if a, ok := t.addedByText[tok]; ok {
		return a.id, true
	}
	id, ok := t.model.vocab[tok]
	return id, ok
}

// IDToToken returns the token string of an id.
func (t *Tokenizer) IDToToken(id int64) (string, bool) {
	if a, ok := t.added[id]; ok {
		return a.content, true
	}
	return t.modelToken(id)
}

// VocabSize returns the number of distinct tokens: the model vocabulary plus
// the added tokens that are not already in it, as the Rust library counts.
// Ids need not be dense, so an id can exceed it: GPT-4o's tokenizer.json has
// 200000 tokens and an added token with id 200018.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int64) bool {
	a, ok := t.added[id]
	return ok && a.special
}
