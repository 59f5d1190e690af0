package prompt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/frontend/tokenizer"
)

// goldenLayouts holds the prompt layouts that the upstream PyTorch code built
// for a small vocabulary (copied from the golden upstream-tiny cases).
type goldenLayouts struct {
	SpecialTokens    map[string]int64 `json:"special_tokens"`
	ImageTokenOffset int64            `json:"image_token_offset"`
	T2I              []struct {
		Name                string    `json:"name"`
		TextIDs             [][]int64 `json:"text_ids"`
		PrefixLength        int       `json:"prefix_length"`
		NumImageTokens      int       `json:"num_image_tokens"`
		InputIDs            [][]int64 `json:"input_ids"`
		AttentionMask       [][]int64 `json:"attention_mask"`
		UncondInputIDs      [][]int64 `json:"uncond_input_ids"`
		UncondAttentionMask [][]int64 `json:"uncond_attention_mask"`
	} `json:"t2i"`
	MMU []struct {
		Name      string    `json:"name"`
		PromptIDs [][]int64 `json:"prompt_ids"`
	} `json:"mmu"`
	TextBatch []struct {
		Name                string    `json:"name"`
		PromptIDs           [][]int64 `json:"prompt_ids"`
		PromptAttentionMask [][]int64 `json:"prompt_attention_mask"`
		PadID               int64     `json:"pad_id"`
	} `json:"text_batch"`
}

func loadGolden(t *testing.T) (goldenLayouts, Special) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden-layouts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g goldenLayouts
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatalf("parse golden layouts: %v", err)
	}
	sp := SpecialFromConfig(g.SpecialTokens, g.ImageTokenOffset)
	if err := sp.Validate(); err != nil {
		t.Fatalf("golden special tokens: %v", err)
	}
	return g, sp
}

// TestT2IGolden also settles the meaning of prefixLen: the golden cases pass
// 17 and their text prefix (padding included) is 17 ids long, so prefixLen is
// the whole prefix P = max_text_len + 1, and a long caption is cut to P-1 ids
// plus EOS (the batch-truncated case).
func TestT2IGolden(t *testing.T) {
	g, sp := loadGolden(t)
	if len(g.T2I) == 0 {
		t.Fatal("no t2i cases in the golden file")
	}
	for _, c := range g.T2I {
		for row, text := range c.TextIDs {
			ids, mask := T2I(text, sp, c.PrefixLength, c.NumImageTokens)
			if !slices.Equal(ids, c.InputIDs[row]) {
				t.Errorf("%s row %d: T2I ids\n got %v\nwant %v", c.Name, row, ids, c.InputIDs[row])
			}
			if !slices.Equal(mask, c.AttentionMask[row]) {
				t.Errorf("%s row %d: T2I mask\n got %v\nwant %v", c.Name, row, mask, c.AttentionMask[row])
			}
			uids, umask := T2IUncond(sp, c.PrefixLength, c.NumImageTokens)
			if !slices.Equal(uids, c.UncondInputIDs[row]) {
				t.Errorf("%s row %d: T2IUncond ids\n got %v\nwant %v", c.Name, row, uids, c.UncondInputIDs[row])
			}
			if !slices.Equal(umask, c.UncondAttentionMask[row]) {
				t.Errorf("%s row %d: T2IUncond mask\n got %v\nwant %v", c.Name, row, umask, c.UncondAttentionMask[row])
			}
			if got := len(ids); got != c.PrefixLength+c.NumImageTokens+2 {
				t.Errorf("%s row %d: length %d, want prefix + image slots + 2", c.Name, row, got)
			}
		}
	}
}

func TestT2IKeepsLeadingBOS(t *testing.T) {
	sp := MMaDA8B
	withBOS, _ := T2I([]int64{sp.BOS, 7, 8}, sp, 8, 2)
	without, _ := T2I([]int64{7, 8}, sp, 8, 2)
	if !slices.Equal(withBOS, without) {
		t.Errorf("T2I with a leading BOS = %v, want the layout without it %v", withBOS, without)
	}
}

func TestT2IExactFit(t *testing.T) {
	sp := MMaDA8B
	ids, mask := T2I([]int64{7, 8}, sp, 5, 1)
	want := []int64{sp.T2I, sp.BOS, 7, 8, sp.EOS, sp.SOI, sp.Mask, sp.EOI}
	if !slices.Equal(ids, want) {
		t.Errorf("T2I ids = %v, want %v", ids, want)
	}
	if !slices.Equal(mask, []int64{1, 1, 1, 1, 1, 1, 1, 1}) {
		t.Errorf("T2I mask = %v, want all ones", mask)
	}
}

func TestT2IInvalidSizes(t *testing.T) {
	if err := CheckT2I(2, 16); err == nil || !strings.Contains(err.Error(), "prefix length 2") {
		t.Errorf("CheckT2I(2, 16) = %v, want a prefix length error", err)
	}
	if err := CheckT2I(17, -1); err == nil || !strings.Contains(err.Error(), "-1 is negative") {
		t.Errorf("CheckT2I(17, -1) = %v, want an image token count error", err)
	}
	if err := CheckT2I(3, 0); err != nil {
		t.Errorf("CheckT2I(3, 0) = %v, want nil", err)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("T2I(prefixLen 2) did not panic")
		}
	}()
	T2I(nil, MMaDA8B, 2, 4)
}

func TestMMUGolden(t *testing.T) {
	g, sp := loadGolden(t)
	if len(g.MMU) == 0 {
		t.Fatal("no mmu cases in the golden file")
	}
	for _, c := range g.MMU {
		prompt := c.PromptIDs[0]
		eoi := slices.Index(prompt, sp.EOI)
		if eoi < 0 {
			t.Fatalf("%s: golden prompt has no EOI", c.Name)
		}
		var codes []int64
		for _, id := range prompt[2:eoi] {
			codes = append(codes, id-sp.ImageOffset)
		}
		got := MMU(codes, sp, prompt[eoi+1:])
		if !slices.Equal(got, prompt) {
			t.Errorf("%s: MMU\n got %v\nwant %v", c.Name, got, prompt)
		}
	}
}

func TestMMULayout(t *testing.T) {
	sp := MMaDA8B
	got := MMU([]int64{0, 5, 8191}, sp, []int64{1, 2})
	want := []int64{126089, 126084, 126349, 126354, 134540, 126085, 1, 2}
	if !slices.Equal(got, want) {
		t.Errorf("MMU = %v, want %v", got, want)
	}
}

func TestEncodeBatchLeftPadGolden(t *testing.T) {
	g, _ := loadGolden(t)
	if len(g.TextBatch) == 0 {
		t.Fatal("no padded text batch in the golden file")
	}
	for _, c := range g.TextBatch {
		// Strip the golden padding to get the prompts as a user gives them.
		var seqs [][]int64
		for r, row := range c.PromptIDs {
			start := slices.Index(c.PromptAttentionMask[r], 1)
			seqs = append(seqs, row[start:])
		}
		ids, mask := EncodeBatchLeftPad(seqs, c.PadID)
		for r := range ids {
			if !slices.Equal(ids[r], c.PromptIDs[r]) {
				t.Errorf("%s row %d: ids %v, want %v", c.Name, r, ids[r], c.PromptIDs[r])
			}
			if !slices.Equal(mask[r], c.PromptAttentionMask[r]) {
				t.Errorf("%s row %d: mask %v, want %v", c.Name, r, mask[r], c.PromptAttentionMask[r])
			}
		}
	}
}

func TestEncodeBatchLeftPadEmpty(t *testing.T) {
	ids, mask := EncodeBatchLeftPad(nil, 0)
	if len(ids) != 0 || len(mask) != 0 {
		t.Errorf("EncodeBatchLeftPad(nil) = %v, %v; want empty", ids, mask)
	}
	ids, mask = EncodeBatchLeftPad([][]int64{{}, {4}}, 9)
	if !slices.Equal(ids[0], []int64{9}) || !slices.Equal(mask[0], []int64{0}) {
		t.Errorf("empty row padded to %v, %v; want [9], [0]", ids[0], mask[0])
	}
}

func TestSpecialFromConfigMissing(t *testing.T) {
	sp := SpecialFromConfig(map[string]int64{"bos": 1, "eos": 2}, 100)
	if sp.BOS != 1 || sp.EOS != 2 || sp.ImageOffset != 100 {
		t.Errorf("SpecialFromConfig = %+v, want BOS 1, EOS 2, ImageOffset 100", sp)
	}
	err := sp.Validate()
	if err == nil || !strings.Contains(err.Error(), "soi, eoi, t2i, mmu, ipad, mask, start_header, end_header, eot_id") {
		t.Errorf("Validate = %v, want the missing keys listed", err)
	}
	if err := (Special{ImageOffset: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "offset -1") {
		t.Errorf("Validate(negative offset) = %v, want an offset error", err)
	}
	if err := MMaDA8B.Validate(); err != nil {
		t.Errorf("MMaDA8B.Validate() = %v", err)
	}
}

// byteEncoder encodes each byte as its value, which makes layouts readable.
type byteEncoder struct{}

func (byteEncoder) Encode(s string) []int64 {
	ids := make([]int64, len(s))
	for i := range len(s) {
		ids[i] = int64(s[i])
	}
	return ids
}

func TestChatLayout(t *testing.T) {
	sp := Special{BOS: 1000, StartHeader: 1001, EndHeader: 1002, EotID: 1003}
	got := Chat(byteEncoder{}, sp, []Message{{Role: "user", Content: "  Hi \n"}}, false)
	var want []int64
	want = append(want, 1000, 1001)
	want = append(want, byteEncoder{}.Encode("user")...)
	want = append(want, 1002)
	want = append(want, byteEncoder{}.Encode("\nHi")...)
	want = append(want, 1003, 1001)
	want = append(want, byteEncoder{}.Encode("assistant")...)
	want = append(want, 1002, '\n')
	if !slices.Equal(got, want) {
		t.Errorf("Chat =\n %v\nwant\n %v", got, want)
	}
}

// loadTokenizer loads the small byte-level tokenizer (a copy of the one in
// frontend/tokenizer/testdata) and the ids of its chat tokens.
func loadTokenizer(t *testing.T) (*tokenizer.Tokenizer, Special) {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join("testdata", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(s string) int64 {
		v, ok := tok.TokenToID(s)
		if !ok {
			t.Fatalf("token %q missing from the test tokenizer", s)
		}
		return v
	}
	sp := Special{
		BOS:         id("<|startoftext|>"),
		StartHeader: id("<|start_header_id|>"),
		EndHeader:   id("<|end_header_id|>"),
		EotID:       id("<|eot_id|>"),
	}
	return tok, sp
}

// TestChatMatchesTemplateString checks that placing special ids and encoding
// the text between them gives the ids of the whole template string.
func TestChatMatchesTemplateString(t *testing.T) {
	tok, sp := loadTokenizer(t)
	messages := []Message{
		{Role: "system", Content: "You are a helpful assistant. "},
		{Role: "user", Content: "  What is 2+2?\n\n"},
		{Role: "assistant", Content: "4"},
		{Role: "user", Content: "And   3+3 ?"},
	}
	for _, think := range []bool{false, true} {
		var sb strings.Builder
		sb.WriteString("<|startoftext|>")
		for i, m := range messages {
			content := m.Content
			if think && i == 3 {
				content = ThinkPrefix + content
			}
			sb.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n" + strings.TrimSpace(content) + "<|eot_id|>")
		}
		sb.WriteString("<|start_header_id|>assistant<|end_header_id|>\n")
		want := tok.Encode(sb.String())
		got := Chat(tok, sp, messages, think)
		if !slices.Equal(got, want) {
			t.Errorf("think=%v: Chat\n got %v\nwant %v (Encode of %q)", think, got, want, sb.String())
		}
	}
}

func TestChatThinkOnlyLastUser(t *testing.T) {
	sp := Special{BOS: 1000, StartHeader: 1001, EndHeader: 1002, EotID: 1003}
	messages := []Message{{Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}, {Role: "user", Content: "c"}}
	got := Chat(byteEncoder{}, sp, messages, true)
	text := string(func() []byte {
		var b []byte
		for _, id := range got {
			if id < 256 {
				b = append(b, byte(id))
			}
		}
		return b
	}())
	if n := strings.Count(text, "You should first think"); n != 1 {
		t.Fatalf("think prefix appears %d times, want once", n)
	}
	if !strings.Contains(text, "\n"+ThinkPrefix+"c") {
		t.Errorf("think prefix is not in front of the last user message: %q", text)
	}
}
