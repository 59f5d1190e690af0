// Package prompt lays out MMaDA's input sequences: the chat template of the
// MixCoT checkpoints, the text-to-image prompt with its image slots, the
// multimodal-understanding prompt with image codes, and left-padded
// batches. It works on token ids and needs only something that encodes text
// (the Encoder interface), so it does not depend on a tokenizer package.
package prompt

import (
	"fmt"
	"strings"
)

// Special holds the ids of MMaDA's special tokens and where image codes
// start in the vocabulary.
type Special struct {
	BOS         int64 // <|startoftext|>, first token of a chat and of a t2i caption
	EOS         int64 // <|endoftext|>, ends a t2i caption; also the padding id of text batches
	SOI         int64 // <|soi|>, start of image
	EOI         int64 // <|eoi|>, end of image
	T2I         int64 // <|t2i|>, task token of text-to-image
	MMU         int64 // <|mmu|>, task token of multimodal understanding
	IPad        int64 // [iPAD], left padding of the t2i text prefix
	Mask        int64 // <|mdm_mask|>, the masked-diffusion mask token
	StartHeader int64 // <|start_header_id|>
	EndHeader   int64 // <|end_header_id|>
	EotID       int64 // <|eot_id|>, ends a chat message
	ImageOffset int64 // id of image code 0; code c has id ImageOffset + c
}

// MMaDA8B is the layout of the released MMaDA-8B checkpoints, whose text
// tokenizer has 126349 entries followed by the 8192 image codes.
var MMaDA8B = Special{
	BOS:         126080,
	EOS:         126081,
	SOI:         126084,
	EOI:         126085,
	T2I:         126088,
	MMU:         126089,
	IPad:        126093,
	Mask:        126336,
	StartHeader: 126346,
	EndHeader:   126347,
	EotID:       126348,
	ImageOffset: 126349,
}

// specialKeys lists the config keys that SpecialFromConfig reads, in the
// order of the Special fields.
var specialKeys = []string{"bos", "eos", "soi", "eoi", "t2i", "mmu", "ipad", "mask", "start_header", "end_header", "eot_id"}

// fields returns pointers to the id fields in the order of specialKeys.
func (s *Special) fields() []*int64 {
	return []*int64{&s.BOS, &s.EOS, &s.SOI, &s.EOI, &s.T2I, &s.MMU, &s.IPad, &s.Mask, &s.StartHeader, &s.EndHeader, &s.EotID}
}

// SpecialFromConfig builds a Special from a map with the keys bos, eos, soi,
// eoi, t2i, mmu, ipad, mask, start_header, end_header and eot_id (the
// "special_tokens" object of a checkpoint config). A missing key leaves its
// field at -1, which Validate reports.
func SpecialFromConfig(ids map[string]int64, imageOffset int64) Special {
	s := Special{ImageOffset: imageOffset}
	for i, f := range s.fields() {
		id, ok := ids[specialKeys[i]]
		if !ok {
			id = -1
		}
		*f = id
	}
	return s
}

// Validate reports special ids that are missing (negative) and a negative
// image offset.
func (s Special) Validate() error {
	var missing []string
	for i, f := range s.fields() {
		if *f < 0 {
			missing = append(missing, specialKeys[i])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("special token ids missing or negative: %s; set them in the config's special_tokens", strings.Join(missing, ", "))
	}
	if s.ImageOffset < 0 {
		return fmt.Errorf("image token offset %d is negative", s.ImageOffset)
	}
	return nil
}

// EncodeBatchLeftPad pads each sequence on the left with pad to the length
// of the longest one. mask is 0 on padding and 1 on the sequence's own
// tokens. MMaDA samples generate to the right of the prompt, so prompts are
// padded on the left to keep every row's prompt ending at the same column.
func EncodeBatchLeftPad(seqs [][]int64, pad int64) (ids, mask [][]int64) {
	width := 0
	for _, s := range seqs {
		width = max(width, len(s))
	}
	ids = make([][]int64, len(seqs))
	mask = make([][]int64, len(seqs))
	for i, s := range seqs {
		n := width - len(s)
		row := make([]int64, width)
		m := make([]int64, width)
		for j := range n {
			row[j] = pad
		}
		copy(row[n:], s)
		for j := n; j < width; j++ {
			m[j] = 1
		}
		ids[i], mask[i] = row, m
	}
	return ids, mask
}
