package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of "added_tokens" with its id.
type addedToken struct {
	id         int64
	content    string
	singleWord bool // match only when not inside a word
	lstrip     bool // the match takes the whitespace before it
	rstrip     bool // the match takes the whitespace after it
	special    bool // Decode with skipSpecial drops it
}

// segment is a piece of the input text: either an added token (id >= 0) or
// text still to be normalized and tokenized (id = -1).
type segment struct {
	text string
	id   int64
}

// tokenMatcher finds added tokens in text, leftmost first and the longest
// of those that start at the same place, with a byte trie.
type tokenMatcher struct {
	root *trieNode
}

type trieNode struct {
	next  map[byte]*trieNode
	token *addedToken // the token that ends here, or nil
}

func newTokenMatcher() *tokenMatcher { return &tokenMatcher{root: &trieNode{}} }

// add registers a token under pattern (its content, or its normalized
// content). A later token with the same pattern replaces the earlier one.
func (m *tokenMatcher) add(pattern string, t *addedToken) {
	if pattern == "" {
		return
	}
	node := m.root
	for i := 0; i < len(pattern); i++ {
		if node.next == nil {
			node.next = make(map[byte]*trieNode)
		}
		child := node.next[pattern[i]]
		if child == nil {
			child = &trieNode{}
			node.next[pattern[i]] = child
		}
		node = child
	}
	node.token = t
}

func (m *tokenMatcher) empty() bool { return len(m.root.next) == 0 }

// longestAt returns the longest token that starts at s[i:] and its length.
func (m *tokenMatcher) longestAt(s string, i int) (*addedToken, int) {
	var best *addedToken
	bestLen := 0
	node := m.root
	for j := i; j < len(s); j++ {
		node = node.next[s[j]]
		if node == nil {
			break
		}
		if node.token != nil {
			best, bestLen = node.token, j+1-i
		}
	}
	return best, bestLen
}

// split cuts text into added tokens and the text between them, as the Rust
// library does. A single_word token that touches a word character is
// skipped, and the search goes on after it. lstrip and rstrip widen a match
// over the neighbouring whitespace, but lstrip never reaches back into the
// previous match.
func (m *tokenMatcher) split(text string) []segment {
	if m.empty() || text == "" {
		return []segment{{text: text, id: -1}}
	}
	var out []segment
	done := 0 // end of the previous match
	for i := 0; i < len(text); {
		t, n := m.longestAt(text, i)
		if t == nil {
			i++
			continue
		}
		start, stop := i, i+n
		if t.singleWord && (endsWithWord(text[:start]) || startsWithWord(text[stop:])) {
			i = stop
			continue
		}
		if t.lstrip {
			start = max(trailingSpaceStart(text[:start]), done)
		}
		if t.rstrip {
			stop += leadingSpaceLen(text[stop:])
		}
		if start > done {
			out = append(out, segment{text: text[done:start], id: -1})
		}
		out = append(out, segment{text: text[start:stop], id: t.id})
		done = stop
		i = stop
	}
	if done < len(text) {
		out = append(out, segment{text: text[done:], id: -1})
	}
	return out
}

// isWordRune is \w of Rust's regex crate: letters, marks, decimal digits,
// connector punctuation and the join controls.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Pc, r) || r == 0x200C || r == 0x200D
}

func endsWithWord(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordRune(r)
}

func startsWithWord(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordRune(r)
}

// trailingSpaceStart returns where the whitespace at the end of s begins.
func trailingSpaceStart(s string) int {
	end := len(s)
	for end > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:end])
		if !unicode.IsSpace(r) {
			break
		}
		end -= size
	}
	return end
}

// leadingSpaceLen returns the byte length of the whitespace that starts s.
func leadingSpaceLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if !unicode.IsSpace(r) {
			break
		}
		n += size
	}
	return n
}
