package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/frontend/prompt"
	"github.com/mmadac/mmadac/frontend/tokenizer"
	"github.com/mmadac/mmadac/internal/engine"
)

// loadTokenizer reads the tokenizer.json of a checkpoint folder or of the
// checkpoint a bundle was built from.
// An explicit path (--tokenizer) wins.
func loadTokenizer(model, explicit string) (*tokenizer.Tokenizer, error) {
	if explicit != "" {
		return tokenizer.Load(explicit)
	}
	dir := model
	missing := fmt.Sprintf("%s has no %s", model, tokenizer.FileName)
	if bundle.IsBundle(model) {
		if m, err := bundle.Read(model); err == nil {
			if _, statErr := os.Stat(filepath.Join(model, tokenizer.FileName)); statErr != nil {
				dir = m.Checkpoint
				missing = fmt.Sprintf("neither bundle %s nor its checkpoint %s has a %s", model, m.Checkpoint, tokenizer.FileName)
			}
		}
	}
	tok, err := tokenizer.Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s, so text prompts cannot be tokenised; pass a tokenizer with --tokenizer FILE (the small testdata model fits testdata/tiny-tokenizer/tokenizer.json) or token ids with --prompt-ids", missing)
	}
	return tok, err
}

// specialTokens returns the special ids of a model: the checkpoint config's,
// then the tokenizer's own ids for the chat-template tokens.
func specialTokens(m *engine.TextModel, tok *tokenizer.Tokenizer) prompt.Special {
	ids := m.Config.SpecialTokenIDs()
	if tok != nil {
		for key, text := range map[string]string{
			"bos": "<|startoftext|>", "eos": "<|endoftext|>", "start_header": "<|start_header_id|>",
			"end_header": "<|end_header_id|>", "eot_id": "<|eot_id|>",
		} {
			if _, fromConfig := m.Config.SpecialTokens[key]; fromConfig {
				continue
			}
			if id, ok := tok.TokenToID(text); ok {
				ids[key] = id
			}
		}
	}
	return prompt.SpecialFromConfig(ids, m.Config.ImageTokenOffset())
}

// answer decodes the generated part of a sequence: cut at the first end of
// text (eos or eot_id), special tokens skipped.
func answer(tok *tokenizer.Tokenizer, sp prompt.Special, row []int64, promptLen int) string {
	gen := row[promptLen:]
	for i, t := range gen {
		if t == sp.EOS || t == sp.EotID {
			gen = gen[:i]
			break
		}
	}
	return tok.Decode(gen, true)
}

// streamer shows the current block's text as it is unmasked: refreshed in
// place on a terminal, one line per step otherwise.
type streamer struct {
	w        io.Writer
	terminal bool
	tok      *tokenizer.Tokenizer
	mask     int64
}

func newStreamer(w io.Writer, tok *tokenizer.Tokenizer, mask int64) *streamer {
	term := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			term = true
		}
	}
	return &streamer{w: w, terminal: term, tok: tok, mask: mask}
}

// show prints the tokens of [lo, hi) of the first row, masked positions as
// a placeholder.
func (s *streamer) show(header string, row []int64, lo, hi int, final bool) {
	var sb strings.Builder
	run := []int64{}
	flush := func() {
		if len(run) > 0 {
			sb.WriteString(s.tok.Decode(run, true))
			run = run[:0]
		}
	}
	for _, t := range row[lo:hi] {
		if t == s.mask {
			flush()
			sb.WriteString("░")
			continue
		}
		run = append(run, t)
	}
	flush()
	text := strings.Map(printable, strings.ReplaceAll(sb.String(), "\n", "⏎"))
	if s.terminal {
		fmt.Fprintf(s.w, "\r\033[K%s %s", header, text)
		if final {
			fmt.Fprintln(s.w)
		}
		return
	}
	fmt.Fprintf(s.w, "%s %s\n", header, text)
}

// printable replaces control characters, which a model may emit as byte
// tokens, so they cannot move the cursor or change the terminal.
func printable(r rune) rune {
	if unicode.IsControl(r) {
		return '\uFFFD'
	}
	return r
}
