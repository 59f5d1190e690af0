package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// MidSizeConfig is the benchmark configuration: d_model 512, 8 layers, 8
// heads, MLP 1536, vocabulary 32768, special tokens at the top of the
// text range and 1024 image codes after it.
func MidSizeConfig() map[string]any {
	return map[string]any{
		"d_model": 512, "n_heads": 8, "n_kv_heads": 8, "n_layers": 8, "mlp_hidden_size": 1536,
		"mlp_ratio": 4, "activation_type": "silu", "block_type": "llama", "block_group_size": 1,
		"alibi": false, "rope": true, "rope_full_precision": true, "rope_theta": 500000.0,
		"layer_norm_type": "rms", "layer_norm_with_affine": true, "rms_norm_eps": 1e-5,
		"include_bias": false, "include_qkv_bias": false, "bias_for_layer_norm": false,
		"attention_layer_norm": false, "scale_logits": false, "input_emb_norm": false,
		"weight_tying": false, "vocab_size": 32768, "embedding_size": 32768,
		"max_sequence_length": 4096, "mask_token_id": 31000, "eos_token_id": 30001, "pad_token_id": 30001,
		"bos_token_id": 30000, "llm_vocab_size": 31744, "codebook_size": 1024, "num_vq_tokens": 256,
		"image_token_offset": 31744,
		"special_tokens": map[string]int{
			"bos": 30000, "eos": 30001, "soi": 30004, "eoi": 30005, "t2i": 30008, "mmu": 30009,
			"ipad": 30013, "mask": 31000, "start_header": 30100, "end_header": 30101, "eot_id": 30102,
		},
		"model_type": "mmada", "architectures": []string{"MMadaModelLM"},
	}
}

// WriteRandomCheckpoint writes a checkpoint folder with the given config
// and float32 weights drawn from a scaled normal distribution (norm weights
// 1), so that activations keep a sane range through the layers.
func WriteRandomCheckpoint(dir string, config map[string]any, seed uint64) error {
	data, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return err
	}
	cfg, err := frontend.ParseLLaDAConfig(data)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	d, h, v := int64(cfg.DModel), int64(cfg.MLPHidden()), int64(cfg.Vocab())
	ts := map[string]*ir.Tensor{}
	normal := func(name string, scale float64, shape ...int64) {
		t := ir.NewTensor(ir.F32, shape...)
		for i := range t.F32() {
			t.F32()[i] = float32(rng.NormFloat64() * scale)
		}
		ts[name] = t
	}
	ones := func(name string, n int64) {
		t := ir.NewTensor(ir.F32, n)
		for i := range t.F32() {
			t.F32()[i] = 1
		}
		ts[name] = t
	}
	normal("model.transformer.wte.weight", 1, v, d)
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("model.transformer.blocks.%d.", l)
		ones(p+"attn_norm.weight", d)
		ones(p+"ff_norm.weight", d)
		for _, n := range []string{"q_proj", "k_proj", "v_proj", "attn_out"} {
			normal(p+n+".weight", 1/math.Sqrt(float64(d)), d, d)
		}
		normal(p+"ff_proj.weight", 1/math.Sqrt(float64(d)), h, d)
		normal(p+"up_proj.weight", 1/math.Sqrt(float64(d)), h, d)
		normal(p+"ff_out.weight", 1/math.Sqrt(float64(h)), d, h)
	}
	ones("model.transformer.ln_f.weight", d)
	if !cfg.Tied() {
		normal("model.transformer.ff_out.weight", 1/math.Sqrt(float64(d)), v, d)
	}
	return frontend.WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts)
}
