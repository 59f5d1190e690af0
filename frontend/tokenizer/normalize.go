package tokenizer

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization.
type normalizer interface {
	normalize(s string) string
}

// unicodeNormalizer applies one Unicode normalization form.
type unicodeNormalizer struct{ form norm.Form }

func (u unicodeNormalizer) normalize(s string) string { return u.form.String(s) }

type sequenceNormalizer []normalizer

func (s sequenceNormalizer) normalize(text string) string {
	for _, n := range s {
		text = n.normalize(text)
	}
	return text
}

// newNormalizer builds the normalizer described by raw; nil when absent.
func newNormalizer(raw json.RawMessage, where string) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, err := parseComponent(raw, where)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "NFC":
		return unicodeNormalizer{norm.NFC}, nil
	case "NFD":
		return unicodeNormalizer{norm.NFD}, nil
	case "NFKC":
		return unicodeNormalizer{norm.NFKC}, nil
	case "NFKD":
		return unicodeNormalizer{norm.NFKD}, nil
	case "Sequence":
		var seq sequenceNormalizer
		for i, item := range c.Normalizers {
			n, err := newNormalizer(item, fmt.Sprintf("%s.normalizers[%d]", where, i))
			if err != nil {
				return nil, err
			}
			if n != nil {
				seq = append(seq, n)
			}
		}
		return seq, nil
	default:
		return nil, fmt.Errorf("%s: normalizer type %q is not supported (supported: NFC, NFD, NFKC, NFKD, Sequence)", where, c.Type)
	}
}

// appendLossy appends b to dst as valid UTF-8, replacing each maximal
// invalid subsequence with one U+FFFD, the policy of Rust's
// String::from_utf8_lossy (and of the Unicode standard's recommendation).
// Go's own conversions replace byte by byte instead, which gives more
// U+FFFD characters for a truncated multi-byte sequence.
func appendLossy(dst []byte, b []byte) []byte {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			dst = append(dst, b[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			dst = append(dst, b[i:i+size]...)
			i += size
			continue
		}
		dst = utf8.AppendRune(dst, utf8.RuneError)
		i += invalidPrefixLen(b[i:])
	}
	return dst
}

// invalidPrefixLen returns the length of the maximal invalid subsequence at
// the start of b, which does not begin a valid character: the lead byte plus
// the continuation bytes that were still allowed after it.
func invalidPrefixLen(b []byte) int {
	lead := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the first continuation byte
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		need = 1
	case lead == 0xE0:
		need, lo = 2, 0xA0
	case lead == 0xED:
		need, hi = 2, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		need = 2
	case lead == 0xF0:
		need, lo = 3, 0x90
	case lead == 0xF4:
		need, hi = 3, 0x8F
	case lead >= 0xF1 && lead <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		c := b[n]
		if k == 0 && (c < lo || c > hi) || k > 0 && (c < 0x80 || c > 0xBF) {
			break
		}
		n++
	}
	return n
}

// validUTF8 returns s unchanged when it is valid UTF-8 and a lossy copy
// otherwise.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendLossy(nil, []byte(s)))
}
