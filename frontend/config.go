package frontend

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
)

// LLaDAConfig is the config.json of a LLaDA or MMaDA checkpoint. Field names
// follow the JSON keys of upstream's ModelConfig (configuration_llada.py) plus
// the Hugging Face and MMaDA additions. Unknown keys are ignored.
//
// Pointer fields are those that upstream declares Optional, where a missing
// or null value has its own meaning (documented per field). For the other
// fields a missing or null key keeps the upstream dataclass default, which
// ParseLLaDAConfig sets. The model sizes (d_model, n_heads, n_layers,
// vocab_size) are the exception: they stay 0, so that Validate rejects a
// config that lacks them instead of building upstream's GPT-2-sized model.
type LLaDAConfig struct {
	// DModel is the hidden size (4096 for MMaDA-8B).
	DModel int `json:"d_model"`
	// NHeads is the number of attention heads.
	NHeads int `json:"n_heads"`
	// NKVHeads is the number of key/value heads; nil or 0 means NHeads.
	NKVHeads *int `json:"n_kv_heads"`
	// NLayers is the number of transformer blocks.
	NLayers int `json:"n_layers"`
	// MLPRatio sizes the MLP as MLPRatio*DModel when MLPHiddenSize is nil. Default 4.
	MLPRatio int `json:"mlp_ratio"`
	// MLPHiddenSize is the exact MLP width (12288 for MMaDA-8B), or nil.
	MLPHiddenSize *int `json:"mlp_hidden_size"`
	// ActivationType is the MLP activation: gelu, relu, silu or swiglu. Default "swiglu".
	ActivationType string `json:"activation_type"`
	// BlockType is the block implementation: sequential, parallel or llama. Default "sequential".
	BlockType string `json:"block_type"`
	// BlockGroupSize groups blocks for FSDP during training; 1 keeps the
	// parameter names transformer.blocks.N. Default 1.
	BlockGroupSize int `json:"block_group_size"`
	// ALiBi selects ALiBi attention biases instead of RoPE.
	ALiBi bool `json:"alibi"`
	// ALiBiBiasMax is the largest ALiBi bias. Default 8.
	ALiBiBiasMax float64 `json:"alibi_bias_max"`
	// RoPE selects rotary position embeddings. Default false.
	RoPE bool `json:"rope"`
	// RoPEFullPrecision applies RoPE in float32 whatever the input dtype. Default true.
	RoPEFullPrecision bool `json:"rope_full_precision"`
	// RoPETheta is the RoPE base (500000 for MMaDA-8B). Default 10000.
	RoPETheta float64 `json:"rope_theta"`
	// FlashAttention selects upstream's flash_attn kernels, which compute the same math.
	FlashAttention bool `json:"flash_attention"`
	// AttentionDropout is a training-only probability. Default 0.1.
	AttentionDropout float64 `json:"attention_dropout"`
	// MultiQueryAttention selects one key/value head; nil means not set.
	MultiQueryAttention *bool `json:"multi_query_attention"`
	// AttentionLayerNorm applies layer norm to queries and keys (QK-norm).
	AttentionLayerNorm bool `json:"attention_layer_norm"`
	// AttentionLayerNormWithAffine gives the QK-norms weights. Default true.
	AttentionLayerNormWithAffine bool `json:"attention_layer_norm_with_affine"`
	// ResidualDropout is a training-only probability. Default 0.1.
	ResidualDropout float64 `json:"residual_dropout"`
	// EmbeddingDropout is a training-only probability. Default 0.1.
	EmbeddingDropout float64 `json:"embedding_dropout"`
	// InputEmbNorm scales the input embeddings by sqrt(d_model), as Gemma does.
	InputEmbNorm bool `json:"input_emb_norm"`
	// LayerNormType is default, low_precision, rms, gemma_rms or amd_compatible. Default "default".
	LayerNormType string `json:"layer_norm_type"`
	// LayerNormWithAffine gives the block norms weights. Default true.
	LayerNormWithAffine bool `json:"layer_norm_with_affine"`
	// RMSNormEps is the epsilon of RMSNorm. Default 1e-5.
	RMSNormEps float64 `json:"rms_norm_eps"`
	// MaxSequenceLength sizes upstream's RoPE cache; longer inputs still work. Default 1024.
	MaxSequenceLength int `json:"max_sequence_length"`
	// IncludeQKVBias adds biases to the query, key and value projections.
	IncludeQKVBias bool `json:"include_qkv_bias"`
	// IncludeBias adds biases to every linear layer.
	IncludeBias bool `json:"include_bias"`
	// BiasForLayerNorm adds biases to the norms; nil means IncludeBias.
	BiasForLayerNorm *bool `json:"bias_for_layer_norm"`
	// ScaleLogits multiplies the logits by 1/sqrt(d_model).
	ScaleLogits bool `json:"scale_logits"`
	// VocabSize is the vocabulary size (134656 for MMaDA-8B).
	VocabSize int `json:"vocab_size"`
	// EmbeddingSize is the number of embedding rows, or nil for VocabSize.
	EmbeddingSize *int `json:"embedding_size"`
	// WeightTying uses the input embedding as the output projection. Default true.
	WeightTying bool `json:"weight_tying"`
	// EOSTokenID is the end-of-sequence id, or nil.
	EOSTokenID *int64 `json:"eos_token_id"`
	// PadTokenID is the padding id, or nil.
	PadTokenID *int64 `json:"pad_token_id"`
	// MaskTokenID is the id of the diffusion mask token, or nil.
	MaskTokenID *int64 `json:"mask_token_id"`
	// BOSTokenID is the beginning-of-sequence id, or nil.
	BOSTokenID *int64 `json:"bos_token_id"`
	// LLMVocabSize is the text vocabulary of the LLaDA base model (126464).
	LLMVocabSize int `json:"llm_vocab_size"`
	// CodebookSize is the number of image codes (8192).
	CodebookSize int `json:"codebook_size"`
	// NumVQTokens is the image token count at training resolution.
	NumVQTokens int `json:"num_vq_tokens"`
	// NewVocabSize is LLMVocabSize + CodebookSize + NumNewSpecialTokens.
	NewVocabSize int `json:"new_vocab_size"`
	// NumNewSpecialTokens counts special tokens added by MMaDA training.
	NumNewSpecialTokens int `json:"num_new_special_tokens"`
	// TieWordEmbeddings is the Hugging Face name for weight tying; the model
	// code reads WeightTying.
	TieWordEmbeddings bool `json:"tie_word_embeddings"`
	// InitDevice is the device for training-time initialisation. Like the
	// other init_* fields it does not affect inference.
	InitDevice string `json:"init_device"`
	// InitFn is the weight initialisation scheme. Default "normal".
	InitFn string `json:"init_fn"`
	// InitStd is the initialisation standard deviation. Default 0.02.
	InitStd float64 `json:"init_std"`
	// InitCutoffFactor truncates the initialisation, or nil for no cutoff.
	InitCutoffFactor *float64 `json:"init_cutoff_factor"`
	// Precision is the training precision, e.g. "amp_bf16"; unused in the forward pass.
	Precision string `json:"precision"`
	// UseCache requests a key/value cache, which upstream's forward pass rejects.
	UseCache bool `json:"use_cache"`
	// TorchDType is the dtype the weights were saved in, e.g. "bfloat16".
	TorchDType string `json:"torch_dtype"`
	// Architectures lists the model classes, e.g. ["MMadaModelLM"].
	Architectures []string `json:"architectures"`
	// ModelType is "mmada" or "llada".
	ModelType string `json:"model_type"`
	// SpecialTokens maps names (bos, eos, soi, eoi, t2i, mmu, ipad, mask,
	// start_header, end_header, eot_id) to ids. Small test models carry it;
	// the MMaDA-8B config does not, so SpecialTokenIDs fills defaults.
	SpecialTokens map[string]int64 `json:"special_tokens"`
	// ImageOffset is the id of image code 0 ("image_token_offset"), or nil
	// for the MMaDA-8B value; read it with ImageTokenOffset.
	ImageOffset *int64 `json:"image_token_offset"`
}

// mmada8BSpecialTokens are the special token ids of the MMaDA-8B tokenizer,
// used where a config does not give them.
var mmada8BSpecialTokens = map[string]int64{
	"bos":          126080,
	"eos":          126081,
	"soi":          126084,
	"eoi":          126085,
	"t2i":          126088,
	"mmu":          126089,
	"ipad":         126093,
	"mask":         126336,
	"start_header": 126346,
	"end_header":   126347,
	"eot_id":       126348,
}

// mmada8BImageTokenOffset is the id of image code 0 in MMaDA-8B: image codes
// follow the 126349 text and special tokens.
const mmada8BImageTokenOffset = 126349

// newLLaDAConfig returns a config holding the defaults of upstream's
// ModelConfig dataclass, except for the model sizes and token ids (see
// LLaDAConfig).
func newLLaDAConfig() *LLaDAConfig {
	return &LLaDAConfig{
		MLPRatio:                     4,
		ActivationType:               "swiglu",
		BlockType:                    "sequential",
		BlockGroupSize:               1,
		ALiBiBiasMax:                 8,
		RoPEFullPrecision:            true,
		RoPETheta:                    10000,
		AttentionDropout:             0.1,
		ResidualDropout:              0.1,
		EmbeddingDropout:             0.1,
		LayerNormType:                "default",
		LayerNormWithAffine:          true,
		RMSNormEps:                   1e-5,
		AttentionLayerNormWithAffine: true,
		MaxSequenceLength:            1024,
		WeightTying:                  true,
		InitFn:                       "normal",
		InitStd:                      0.02,
	}
}

// ParseLLaDAConfig decodes a config.json document. It does not call Validate.
func ParseLLaDAConfig(data []byte) (*LLaDAConfig, error) {
	c := newLLaDAConfig()
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("parse LLaDA config: %w", err)
	}
	return c, nil
}

// LoadLLaDAConfig reads and decodes path, which is a config.json file or the
// folder holding one. It does not call Validate.
func LoadLLaDAConfig(path string) (*LLaDAConfig, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load LLaDA config: %w", err)
	}
	c, err := ParseLLaDAConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate reports every setting that mmadac's transformer cannot honour,
// each naming the field, its value and what is supported. Dropout
// probabilities are accepted whatever their value because inference does not
// apply dropout.
func (c *LLaDAConfig) Validate() error {
	var errs []error
	reject := func(field string, value any, supported string) {
		errs = append(errs, fmt.Errorf("%s is %v; %s", field, value, supported))
	}

	if c.DModel <= 0 {
		reject("d_model", c.DModel, "it must be positive")
	}
	if c.NHeads <= 0 {
		reject("n_heads", c.NHeads, "it must be positive")
	} else if c.DModel > 0 {
		if c.DModel%c.NHeads != 0 {
			reject("d_model", c.DModel, fmt.Sprintf("it must be a multiple of n_heads (%d)", c.NHeads))
		} else if c.HeadDim()%2 != 0 {
			reject("d_model/n_heads", c.HeadDim(), "RoPE needs an even head dimension")
		}
	}
	if c.NKVHeads != nil && *c.NKVHeads != 0 && *c.NKVHeads != c.NHeads {
		reject("n_kv_heads", *c.NKVHeads, fmt.Sprintf("only multi-head attention with n_kv_heads equal to n_heads (%d), 0 or null is supported", c.NHeads))
	}
	if c.MultiQueryAttention != nil && *c.MultiQueryAttention {
		reject("multi_query_attention", true, "only false or null is supported")
	}
	if c.NLayers <= 0 {
		reject("n_layers", c.NLayers, "it must be positive")
	}
	if c.MLPHidden() <= 0 {
		reject("mlp_hidden_size (or mlp_ratio*d_model)", c.MLPHidden(), "it must be positive")
	}
	c.validateBlock(reject)
	c.validateVocab(reject)

	if len(errs) > 0 {
		return fmt.Errorf("unsupported LLaDA config: %w", errors.Join(errs...))
	}
	return nil
}

// validateBlock checks the block and norm settings against the one block
// the transformer implements: a bias-free llama block with RMSNorm, SiLU
// gating and RoPE.
func (c *LLaDAConfig) validateBlock(reject func(field string, value any, supported string)) {
	if c.BlockType != "llama" {
		reject("block_type", fmt.Sprintf("%q", c.BlockType), `only "llama" is supported`)
	}
	if c.BlockGroupSize != 1 {
		reject("block_group_size", c.BlockGroupSize, "only 1 is supported (weights named transformer.blocks.N)")
	}

	if c.ActivationType != "silu" {
		reject("activation_type", fmt.Sprintf("%q", c.ActivationType), `only "silu" (the gated llama MLP) is supported`)
	}
	if c.LayerNormType != "rms" {
		reject("layer_norm_type", fmt.Sprintf("%q", c.LayerNormType), `only "rms" is supported`)
	}
	if c.RMSNormEps < 0 {
		reject("rms_norm_eps", c.RMSNormEps, "it must not be negative")
	}

	if c.ALiBi {
		reject("alibi", true, "only false is supported (the model uses RoPE)")
	}
	if !c.RoPE {
		reject("rope", false, "only true is supported")
	}
	if c.RoPETheta <= 0 {
		reject("rope_theta", c.RoPETheta, "it must be positive")
	}

	if c.IncludeBias {
		reject("include_bias", true, "only false is supported (no biases)")
	}
	if c.IncludeQKVBias {
		reject("include_qkv_bias", true, "only false is supported (no biases)")
	}
	if c.BiasForLayerNorm != nil && *c.BiasForLayerNorm {
		reject("bias_for_layer_norm", true, "only false or null is supported (no biases)")
	}

	if c.AttentionLayerNorm {
		reject("attention_layer_norm", true, "only false is supported (no QK-norm)")
	}
	if c.ScaleLogits {
		reject("scale_logits", true, "only false is supported")
	}
	if c.InputEmbNorm {
		reject("input_emb_norm", true, "only false is supported")
	}
}

// validateVocab checks the vocabulary sizes and that the token ids the
// config states lie inside the embedding table.
func (c *LLaDAConfig) validateVocab(reject func(field string, value any, supported string)) {
	if c.VocabSize <= 0 {
		reject("vocab_size", c.VocabSize, "it must be positive")
	}
	if c.EmbeddingSize != nil && *c.EmbeddingSize <= 0 {
		reject("embedding_size", *c.EmbeddingSize, "it must be positive or null")
	}
	vocab := int64(c.Vocab())
	if vocab <= 0 {
		return
	}
	inRange := fmt.Sprintf("token ids must lie in [0, %d), the embedding rows", vocab)
	if c.MaskTokenID != nil && (*c.MaskTokenID < 0 || *c.MaskTokenID >= vocab) {
		reject("mask_token_id", *c.MaskTokenID, inRange)
	}
	for _, name := range sortedNames(c.SpecialTokens) {
		if id := c.SpecialTokens[name]; id < 0 || id >= vocab {
			reject(fmt.Sprintf("special_tokens[%q]", name), id, inRange)
		}
	}
	if c.ImageOffset != nil {
		off := *c.ImageOffset
		if off < 0 || off >= vocab || off+int64(c.CodebookSize) > vocab {
			reject("image_token_offset", off, fmt.Sprintf("image ids image_token_offset..+codebook_size (%d) must lie in [0, %d)", c.CodebookSize, vocab))
		}
	}
}

// HeadDim returns d_model / n_heads, or 0 when n_heads is not positive.
func (c *LLaDAConfig) HeadDim() int {
	if c.NHeads <= 0 {
		return 0
	}
	return c.DModel / c.NHeads
}

// MLPHidden returns the MLP width: mlp_hidden_size when set, else
// mlp_ratio * d_model.
func (c *LLaDAConfig) MLPHidden() int {
	if c.MLPHiddenSize != nil {
		return *c.MLPHiddenSize
	}
	return c.MLPRatio * c.DModel
}

// Vocab returns the number of embedding rows and logits: embedding_size when
// set, else vocab_size.
func (c *LLaDAConfig) Vocab() int {
	if c.EmbeddingSize != nil {
		return *c.EmbeddingSize
	}
	return c.VocabSize
}

// Tied reports whether the output projection reuses the input embedding
// (weight_tying). MMaDA-8B has a separate head, transformer.ff_out.
func (c *LLaDAConfig) Tied() bool { return c.WeightTying }

// SpecialTokenIDs returns the special token ids by name: each entry of
// special_tokens, else bos_token_id, eos_token_id or mask_token_id for bos,
// eos and mask, else the MMaDA-8B value. Names in special_tokens beyond the
// standard set are included too. The map is a fresh copy.
func (c *LLaDAConfig) SpecialTokenIDs() map[string]int64 {
	ids := maps.Clone(mmada8BSpecialTokens)
	if c.BOSTokenID != nil {
		ids["bos"] = *c.BOSTokenID
	}
	if c.EOSTokenID != nil {
		ids["eos"] = *c.EOSTokenID
	}
	if c.MaskTokenID != nil {
		ids["mask"] = *c.MaskTokenID
	}
	maps.Copy(ids, c.SpecialTokens)
	return ids
}

// ImageTokenOffset returns the token id of image code 0: image_token_offset
// when set, else 126349 as in MMaDA-8B.
func (c *LLaDAConfig) ImageTokenOffset() int64 {
	if c.ImageOffset != nil {
		return *c.ImageOffset
	}
	return mmada8BImageTokenOffset
}
