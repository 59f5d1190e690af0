package prompt

import (
	"fmt"
	"strings"
	"unicode"
)

// Encoder turns text into token ids without adding special tokens of its
// own; *tokenizer.Tokenizer implements it.
type Encoder interface {
	Encode(text string) []int64
}

// Message is one turn of a chat.
type Message struct {
	Role    string // "user", "assistant" or "system"
	Content string
}

// ThinkPrefix is the instruction that MMaDA-8B-MixCoT puts before a question
// to make the model reason inside <think> tags before it answers.
const ThinkPrefix = "You should first think about the reasoning process in the mind and then provide the user with the answer. The reasoning process is enclosed within <think> </think> tags, i.e. <think> reasoning process here </think> answer here\n"

// Chat lays out messages with the chat template of the MixCoT checkpoints:
//
//	BOS (first message only) <|start_header_id|> role <|end_header_id|> "\n" trim(content) <|eot_id|>
//
// for each message, then the generation prompt
// <|start_header_id|>assistant<|end_header_id|>"\n". With think, the last
// user message's content starts with ThinkPrefix, as the MixCoT demo does
// for the question it sends.
//
// The special tokens are placed by id and the text between them is encoded
// piece by piece. That gives the ids that encoding the whole template string
// gives, because a tokenizer encodes the text between two special tokens on
// its own (the test checks this with a real byte-level tokenizer).
func Chat(tok Encoder, sp Special, messages []Message, think bool) []int64 {
	lastUser := -1
	if think {
		for i, m := range messages {
			if m.Role == "user" {
				lastUser = i
			}
		}
	}
	var ids []int64
	for i, m := range messages {
		if i == 0 {
			ids = append(ids, sp.BOS)
		}
		content := m.Content
		if i == lastUser {
			content = ThinkPrefix + content
		}
		ids = append(ids, sp.StartHeader)
		ids = append(ids, tok.Encode(m.Role)...)
		ids = append(ids, sp.EndHeader)
		ids = append(ids, tok.Encode("\n"+trim(content))...)
		ids = append(ids, sp.EotID)
	}
	ids = append(ids, sp.StartHeader)
	ids = append(ids, tok.Encode("assistant")...)
	ids = append(ids, sp.EndHeader)
	ids = append(ids, tok.Encode("\n")...)
	return ids
}

// trim removes leading and trailing whitespace as Jinja's trim filter
// (Python's str.strip) does; Python also counts the separators U+001C to
// U+001F as whitespace, which Go's unicode.IsSpace does not.
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1C && r <= 0x1F)
	})
}

// T2I lays out a text-to-image prompt:
//
//	[iPAD]... <|t2i|> BOS text EOS <|soi|> MASK×numImageTokens <|eoi|>
//
// prefixLen is the length of the whole text prefix (task token, BOS, text and
// EOS; 513 for MMaDA-8B, which upstream passes as max_text_len = 512 and
// extends by one for the task token). A shorter prefix is padded on the left
// with [iPAD]; a longer one keeps its first prefixLen-1 ids and ends with EOS.
// BOS is not repeated when textIDs already starts with it. mask is 0 on the
// padding and 1 elsewhere; the image slots are ids[prefixLen+1 :
// prefixLen+1+numImageTokens].
//
// T2I panics when prefixLen < 3 (no room for the task token, BOS and EOS) or
// numImageTokens < 0: both are programming errors, like a negative count in
// strings.Repeat. Callers that take them from users check them with
// CheckT2I first.
func T2I(textIDs []int64, sp Special, prefixLen int, numImageTokens int) (ids, mask []int64) {
	if err := CheckT2I(prefixLen, numImageTokens); err != nil {
		panic("prompt.T2I: " + err.Error())
	}
	prefix := make([]int64, 0, len(textIDs)+3)
	prefix = append(prefix, sp.T2I)
	if len(textIDs) == 0 || textIDs[0] != sp.BOS {
		prefix = append(prefix, sp.BOS)
	}
	prefix = append(prefix, textIDs...)
	prefix = append(prefix, sp.EOS)
	if len(prefix) > prefixLen {
		prefix = append(prefix[:prefixLen-1], sp.EOS)
	}
	pad := prefixLen - len(prefix)

	total := prefixLen + numImageTokens + 2
	ids = make([]int64, 0, total)
	mask = make([]int64, total)
	for range pad {
		ids = append(ids, sp.IPad)
	}
	ids = append(ids, prefix...)
	ids = append(ids, sp.SOI)
	for range numImageTokens {
		ids = append(ids, sp.Mask)
	}
	ids = append(ids, sp.EOI)
	for i := pad; i < total; i++ {
		mask[i] = 1
	}
	return ids, mask
}

// T2IUncond lays out the unconditional prompt of classifier-free guidance:
// T2I with an empty caption.
func T2IUncond(sp Special, prefixLen int, numImageTokens int) (ids, mask []int64) {
	return T2I(nil, sp, prefixLen, numImageTokens)
}

// CheckT2I reports t2i sizes that T2I cannot lay out.
func CheckT2I(prefixLen, numImageTokens int) error {
	if prefixLen < 3 {
		return fmt.Errorf("t2i text prefix length %d is too short: it needs at least 3 ids (task token, BOS, EOS)", prefixLen)
	}
	if numImageTokens < 0 {
		return fmt.Errorf("t2i image token count %d is negative", numImageTokens)
	}
	return nil
}

// MMU lays out a multimodal-understanding prompt: the task token, the image
// codes shifted into the vocabulary, then the chat:
//
//	<|mmu|> <|soi|> (ImageOffset+code)... <|eoi|> chatIDs...
//
// codes are the image tokenizer's indexes (0 to codebook size - 1).
func MMU(codes []int64, sp Special, chatIDs []int64) []int64 {
	ids := make([]int64, 0, len(codes)+len(chatIDs)+3)
	ids = append(ids, sp.MMU, sp.SOI)
	for _, c := range codes {
		ids = append(ids, sp.ImageOffset+c)
	}
	ids = append(ids, sp.EOI)
	return append(ids, chatIDs...)
}
