package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
)

// fileJSON is the top level of tokenizer.json. Components whose type decides
// their fields stay raw until their "type" is known.
type fileJSON struct {
	AddedTokens  []addedTokenJSON `json:"added_tokens"`
	Normalizer   json.RawMessage  `json:"normalizer"`
	PreTokenizer json.RawMessage  `json:"pre_tokenizer"`
	Decoder      json.RawMessage  `json:"decoder"`
	Model        json.RawMessage  `json:"model"`
}

// addedTokenJSON is one entry of "added_tokens".
type addedTokenJSON struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// modelJSON is the "model" object of a BPE tokenizer.
type modelJSON struct {
	Type                    string           `json:"type"`
	Dropout                 *float64         `json:"dropout"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Vocab                   map[string]int64 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
}

// componentJSON holds the fields of every supported normalizer,
// pre-tokenizer and decoder; each type reads the ones it has.
type componentJSON struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Decoders       []json.RawMessage `json:"decoders"`
	Pattern        *patternJSON      `json:"pattern"`
	Behavior       string            `json:"behavior"`
	Invert         bool              `json:"invert"`
	AddPrefixSpace bool              `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
	Content        string            `json:"content"`
	Start          int               `json:"start"`
	Stop           int               `json:"stop"`
}

// patternJSON is a Split or Replace pattern: exactly one of the two is set.
type patternJSON struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

// isNull reports whether a raw component is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "" || s == "null"
}

// parseComponent decodes one component and names where it sits when it fails.
func parseComponent(raw json.RawMessage, where string) (componentJSON, error) {
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("%s: invalid JSON: %w", where, err)
	}
	if c.Type == "" {
		return c, fmt.Errorf("%s: missing \"type\"", where)
	}
	return c, nil
}

// parseMerges accepts both encodings of BPE merges: "left right" strings
// (older files) and [left, right] pairs (newer files, which allow spaces
// inside tokens).
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("model.merges: expected a list: %w", err)
	}
	merges := make([][2]string, len(items))
	for i, item := range items {
		var text string
		if err := json.Unmarshal(item, &text); err == nil {
			left, right, ok := strings.Cut(text, " ")
			if !ok || strings.Contains(right, " ") {
				return nil, fmt.Errorf("model.merges[%d] = %q: expected two tokens separated by one space", i, text)
			}
			merges[i] = [2]string{left, right}
			continue
		}
		var pair []string
		if err := json.Unmarshal(item, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("model.merges[%d] = %s: expected \"left right\" or [left, right]", i, item)
		}
		merges[i] = [2]string{pair[0], pair[1]}
	}
	return merges, nil
}
