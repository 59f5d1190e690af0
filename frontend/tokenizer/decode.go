package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decoder turns token strings back into text pieces; Decode joins the
// pieces of the last decoder in the chain.
type decoder interface {
	decodeChain(tokens []string) []string
}

// newDecoder builds the decoder described by raw; nil when absent.
func newDecoder(raw json.RawMessage, where string) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, err := parseComponent(raw, where)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		if c.Start < 0 || c.Stop < 0 {
			return nil, fmt.Errorf("%s: Strip start = %d and stop = %d must not be negative", where, c.Start, c.Stop)
		}
		content, size := utf8.DecodeRuneInString(c.Content)
		if size == 0 || size != len(c.Content) {
			return nil, fmt.Errorf("%s: Strip content %q must be one character", where, c.Content)
		}
		return stripDecoder{content: content, start: c.Start, stop: c.Stop}, nil
	case "Replace":
		if c.Pattern == nil || c.Pattern.String == nil {
			return nil, fmt.Errorf("%s: Replace decoder supports only a \"String\" pattern", where)
		}
		return replaceDecoder{old: *c.Pattern.String, new: c.Content}, nil
	case "Sequence":
		var seq sequenceDecoder
		for i, item := range c.Decoders {
			d, err := newDecoder(item, fmt.Sprintf("%s.decoders[%d]", where, i))
			if err != nil {
				return nil, err
			}
			if d != nil {
				seq = append(seq, d)
			}
		}
		return seq, nil
	default:
		return nil, fmt.Errorf("%s: decoder type %q is not supported (supported: ByteLevel, ByteFallback, Fuse, Strip, Replace, Sequence)", where, c.Type)
	}
}

type sequenceDecoder []decoder

func (s sequenceDecoder) decodeChain(tokens []string) []string {
	for _, d := range s {
		tokens = d.decodeChain(tokens)
	}
	return tokens
}

// byteLevelDecoder maps the characters of the GPT-2 table back to bytes. A
// token that contains any character outside the table (an added token such
// as "<| 图 |>") contributes its own UTF-8 bytes unchanged.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) []string {
	var raw []byte
	for _, t := range tokens {
		mapped := true
		start := len(raw)
		for _, r := range t {
			b, ok := runeToByte[r]
			if !ok {
				mapped = false
				break
			}
			raw = append(raw, b)
		}
		if !mapped {
			raw = append(raw[:start], t...)
		}
	}
	return []string{string(appendLossy(nil, raw))}
}

// byteFallbackDecoder turns runs of <0xNN> tokens back into text: a run that
// forms valid UTF-8 becomes that text, any other run one U+FFFD per byte.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// parseByteToken reads a byte-fallback token of the form <0xNN>.
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(t[3:5]) {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		default:
			return 0, false
		}
		b = b<<4 | v
	}
	return b, true
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start leading and stop trailing copies of
// content from each token.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (s stripDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		runes := []rune(t)
		lo, hi := 0, len(runes)
		for n := 0; n < s.start && lo < hi && runes[lo] == s.content; n++ {
			lo++
		}
		for n := 0; n < s.stop && hi > lo && runes[hi-1] == s.content; n++ {
			hi--
		}
		out[i] = string(runes[lo:hi])
	}
	return out
}

// replaceDecoder replaces a literal string in each token.
type replaceDecoder struct{ old, new string }

func (r replaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = strings.ReplaceAll(t, r.old, r.new)
	}
	return out
}
