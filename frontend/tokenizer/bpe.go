package tokenizer

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"sync"
	"unicode/utf8"
)

// cacheCapacity bounds the word cache. Like the Rust library's cache, it stops
// inserting when full instead of evicting, so memory stays bounded on huge
// inputs while the frequent words of normal text stay cached.
const cacheCapacity = 50_000

// merge is the result of merging one adjacent pair of ids.
type merge struct {
	rank  int32 // position in the merges list; lower merges first
	newID int32 // id of the concatenated token
}

// bpeModel is a byte-pair-encoding model: a vocabulary and ranked merges.
type bpeModel struct {
	vocab        map[string]int64
	merges       map[uint64]merge // key: left id << 32 | right id
	unkID        int64            // -1 when the model has no unknown token
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	prefix       string // continuing_subword_prefix, added to every non-first character
	suffix       string // end_of_word_suffix, added to the last character

	mu    sync.Mutex
	cache map[string][]int64
}

func pairKey(left, right int64) uint64 { return uint64(left)<<32 | uint64(uint32(right)) }

// newBPE builds the model from the "model" object of tokenizer.json.
func newBPE(raw json.RawMessage) (*bpeModel, error) {
	var m modelJSON
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("model: invalid JSON: %w", err)
	}
	if m.Type != "" && m.Type != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported: only BPE models are", m.Type)
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("model.dropout = %v is not supported: dropout makes encoding random; set it to null", *m.Dropout)
	}
	if len(m.Vocab) == 0 {
		return nil, fmt.Errorf("model.vocab is missing or empty")
	}
	for token, id := range m.Vocab {
		if id < 0 || id > 1<<31-1 {
			return nil, fmt.Errorf("model.vocab[%q] = %d: ids must lie in [0, 2^31)", token, id)
		}
	}
	b := &bpeModel{
		vocab:        m.Vocab,
		unkID:        -1,
		fuseUnk:      m.FuseUnk,
		byteFallback: m.ByteFallback,
		ignoreMerges: m.IgnoreMerges,
		cache:        make(map[string][]int64),
	}
	if m.ContinuingSubwordPrefix != nil {
		b.prefix = *m.ContinuingSubwordPrefix
	}
	if m.EndOfWordSuffix != nil {
		b.suffix = *m.EndOfWordSuffix
	}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token %q is not in model.vocab", *m.UnkToken)
		}
		b.unkID = id
	}
	pairs, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	b.merges = make(map[uint64]merge, len(pairs))
	for rank, p := range pairs {
		left, ok := m.Vocab[p[0]]
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: token %q is not in model.vocab", rank, p[0])
		}
		right, ok := m.Vocab[p[1]]
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: token %q is not in model.vocab", rank, p[1])
		}
		// With a continuing-subword prefix the right token carries the prefix,
		// which the merged token does not repeat.
		joined := p[0] + trimPrefix(p[1], b.prefix)
		newID, ok := m.Vocab[joined]
		if !ok {
			return nil, fmt.Errorf("model.merges[%d]: merged token %q is not in model.vocab", rank, joined)
		}
		// A repeated pair keeps its last rank, as the Rust library's map does.
		b.merges[pairKey(left, right)] = merge{rank: int32(rank), newID: int32(newID)}
	}
	return b, nil
}

func trimPrefix(s, prefix string) string {
	if prefix != "" && len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}

// tokenize appends the ids of one pre-tokenized word to dst.
func (b *bpeModel) tokenize(dst []int64, word string) []int64 {
	if word == "" {
		return dst
	}
	if b.ignoreMerges {
		if id, ok := b.vocab[word]; ok {
			return append(dst, id)
		}
	}
	b.mu.Lock()
	ids, ok := b.cache[word]
	b.mu.Unlock()
	if ok {
		return append(dst, ids...)
	}
	ids = b.mergeWord(word)
	b.mu.Lock()
	if len(b.cache) < cacheCapacity {
		b.cache[word] = ids
	}
	b.mu.Unlock()
	return append(dst, ids...)
}

// symbol is one node of the doubly linked list that merging works on.
type symbol struct {
	id         int64
	prev, next int  // neighbour indexes, -1 at the ends
	alive      bool // false once merged into its left neighbour
}

// mergeWord splits the word into characters and applies the merges, always
// the lowest rank first and the leftmost of equal ranks, as the Rust library
// does.
func (b *bpeModel) mergeWord(word string) []int64 {
	syms := b.initialSymbols(word)
	if len(syms) == 0 {
		return nil
	}
	var queue mergeQueue
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			queue = append(queue, pendingMerge{merge: m, pos: i})
		}
	}
	heap.Init(&queue)
	for queue.Len() > 0 {
		top := heap.Pop(&queue).(pendingMerge)
		left := &syms[top.pos]
		if !left.alive || left.next < 0 {
			continue
		}
		right := &syms[left.next]
		// Skip entries made stale by an earlier merge of either symbol.
		if m, ok := b.merges[pairKey(left.id, right.id)]; !ok || m.newID != top.newID {
			continue
		}
		left.id = int64(top.newID)
		left.next = right.next
		right.alive = false
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if left.prev >= 0 {
			if m, ok := b.merges[pairKey(syms[left.prev].id, left.id)]; ok {
				heap.Push(&queue, pendingMerge{merge: m, pos: left.prev})
			}
		}
		if left.next >= 0 {
			if m, ok := b.merges[pairKey(left.id, syms[left.next].id)]; ok {
				heap.Push(&queue, pendingMerge{merge: m, pos: top.pos})
			}
		}
	}
	ids := make([]int64, 0, len(syms))
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		ids = append(ids, syms[i].id)
	}
	return ids
}

// initialSymbols maps each character of the word to its id, falling back to
// <0xNN> byte tokens or the unknown token, and drops characters that have
// neither (the Rust library does the same when unk_token is null).
func (b *bpeModel) initialSymbols(word string) []symbol {
	syms := make([]symbol, 0, len(word))
	add := func(id int64) {
		n := len(syms)
		syms = append(syms, symbol{id: id, prev: n - 1, next: -1, alive: true})
		if n > 0 {
			syms[n-1].next = n
		}
	}
	pendingUnk := false
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		piece := word[i : i+size]
		if i > 0 && b.prefix != "" {
			piece = b.prefix + piece
		}
		if i+size == len(word) && b.suffix != "" {
			piece += b.suffix
		}
		i += size
		if id, ok := b.vocab[piece]; ok {
			if pendingUnk {
				add(b.unkID)
				pendingUnk = false
			}
			add(id)
			continue
		}
		if b.byteFallback && b.addByteTokens(piece, add) {
			continue
		}
		if b.unkID >= 0 {
			// Consecutive unknown characters become one unknown token when
			// fuse_unk is set, one each otherwise.
			if pendingUnk && !b.fuseUnk {
				add(b.unkID)
			}
			pendingUnk = true
		}
	}
	if pendingUnk {
		add(b.unkID)
	}
	return syms
}

// addByteTokens adds the <0xNN> token of every byte of piece, or nothing and
// false when one of them is missing from the vocabulary.
func (b *bpeModel) addByteTokens(piece string, add func(int64)) bool {
	ids := make([]int64, len(piece))
	for k := 0; k < len(piece); k++ {
		id, ok := b.vocab[byteTokens[piece[k]]]
		if !ok {
			return false
		}
		ids[k] = id
	}
	for _, id := range ids {
		add(id)
	}
	return true
}

// byteTokens[b] is the byte-fallback token of b, "<0x0A>" for b = 10.
var byteTokens = func() [256]string {
	var t [256]string
	for b := range t {
		t[b] = fmt.Sprintf("<0x%02X>", b)
	}
	return t
}()

// pendingMerge is a candidate merge of the symbol at pos with its right
// neighbour.
type pendingMerge struct {
	merge
	pos int
}

// mergeQueue is a min-heap on (rank, pos).
type mergeQueue []pendingMerge

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(pendingMerge)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
