package magvit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Tower is the layout of the encoder or the decoder: base channels and,
// per resolution level, a channel multiplier and a number of residual
// blocks. Level i has Ch*ChMult[i] channels. The encoder runs levels
// 0..n-1 and halves the resolution after each but the last; the decoder
// runs them from n-1 down to 0 and doubles the resolution after each but
// level 0.
type Tower struct {
	// Ch is the base channel count (128 in MAGVIT-v2).
	Ch int
	// ChMult is the channel multiplier of each level.
	ChMult []int
	// NumResBlocks is the residual block count of each level.
	NumResBlocks []int
}

// Factor returns the scale between image and latent side: 2 to the power
// of the number of levels minus one.
func (t Tower) Factor() int { return 1 << (len(t.ChMult) - 1) }

// channels returns the channel count of level i.
func (t Tower) channels(i int) int { return t.Ch * t.ChMult[i] }

// Config is the architecture of a MAGVIT-v2 image tokenizer.
type Config struct {
	Encoder Tower
	Decoder Tower
	// ZChannels is the latent channel count, which is also the number of
	// bits of a code (13 in MAGVIT-v2).
	ZChannels int
	// GroupNormGroups and GroupNormEps configure every GroupNorm.
	GroupNormGroups int
	GroupNormEps    float64
}

// CodebookSize returns the number of codes, 2^ZChannels.
func (c *Config) CodebookSize() int64 { return 1 << c.ZChannels }

// MaxZChannels bounds ZChannels: the decoder embeds a table of every
// code's bits (2^z rows of z values), which at z = 16 is already 4 MiB.
const MaxZChannels = 16

// DefaultConfig returns the MAGVIT-v2 tokenizer used by MMaDA and Show-o
// (showlab/magvitv2), whose hub config.json has no architecture fields:
// the values are the constructor defaults of upstream's encoder, decoder
// and lookup-free quantizer.
func DefaultConfig() *Config {
	return &Config{
		Encoder:         Tower{Ch: 128, ChMult: []int{1, 2, 2, 4, 4}, NumResBlocks: []int{4, 3, 4, 3, 4}},
		Decoder:         Tower{Ch: 128, ChMult: []int{1, 1, 2, 2, 4}, NumResBlocks: []int{4, 4, 3, 4, 3}},
		ZChannels:       13,
		GroupNormGroups: 32,
		GroupNormEps:    1e-6,
	}
}

// configFile is the JSON layout read from config.json. Every field is
// optional; a missing one keeps the MAGVIT-v2 value.
type configFile struct {
	Encoder         *towerFile `json:"encoder"`
	Decoder         *towerFile `json:"decoder"`
	ZChannels       *int       `json:"z_channels"`
	CodebookSize    *int64     `json:"codebook_size"`
	GroupNormGroups *int       `json:"group_norm_groups"`
	GroupNormEps    *float64   `json:"group_norm_eps"`
}

type towerFile struct {
	Ch     *int  `json:"ch"`
	ChMult []int `json:"ch_mult"`
	// NumResBlocks is a list with one count per level, or one integer
	// for every level (the taming-transformers form).
	NumResBlocks json.RawMessage `json:"num_res_blocks"`
}

// ConfigFileName is the file LoadConfig reads inside a checkpoint folder.
const ConfigFileName = "config.json"

// LoadConfig reads dir/config.json. Architecture fields that the file
// lacks keep the MAGVIT-v2 values (see DefaultConfig), so the hub's
// config.json, which contains only diffusers bookkeeping, gives the real
// model. A folder without config.json also gives the defaults, with a
// warning.
func LoadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, ConfigFileName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
			return nil, fmt.Errorf("magvit checkpoint %s is not a folder; pass the folder holding config.json and the safetensors file", dir)
		}
		slog.Warn("magvit checkpoint has no config.json; using the MAGVIT-v2 architecture", "dir", dir)
		return DefaultConfig(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("magvit config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("magvit config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig reads a config.json body; see LoadConfig for the defaults.
func ParseConfig(data []byte) (*Config, error) {
	var f configFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	cfg := DefaultConfig()
	if err := f.Encoder.apply("encoder", &cfg.Encoder); err != nil {
		return nil, err
	}
	if err := f.Decoder.apply("decoder", &cfg.Decoder); err != nil {
		return nil, err
	}
	if f.ZChannels != nil {
		cfg.ZChannels = *f.ZChannels
	}
	if f.GroupNormGroups != nil {
		cfg.GroupNormGroups = *f.GroupNormGroups
	}
	if f.GroupNormEps != nil {
		cfg.GroupNormEps = *f.GroupNormEps
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if f.CodebookSize != nil && *f.CodebookSize != cfg.CodebookSize() {
		return nil, fmt.Errorf("codebook_size %d does not equal 2^z_channels = %d; a lookup-free quantizer has one code per sign pattern of the latent",
			*f.CodebookSize, cfg.CodebookSize())
	}
	return cfg, nil
}

// apply overwrites the fields of t that the file sets.
func (f *towerFile) apply(name string, t *Tower) error {
	if f == nil {
		return nil
	}
	if f.Ch != nil {
		t.Ch = *f.Ch
	}
	if f.ChMult != nil {
		t.ChMult = f.ChMult
	}
	if len(f.NumResBlocks) == 0 || string(f.NumResBlocks) == "null" {
		// Without its own counts a tower with a different level count
		// cannot use the default ones; Validate reports that.
		return nil
	}
	var list []int
	if err := json.Unmarshal(f.NumResBlocks, &list); err == nil {
		t.NumResBlocks = list
		return nil
	}
	var one int
	if err := json.Unmarshal(f.NumResBlocks, &one); err != nil {
		return fmt.Errorf("%s.num_res_blocks is %s; want a list with one count per level or a single integer", name, f.NumResBlocks)
	}
	t.NumResBlocks = make([]int, len(t.ChMult))
	for i := range t.NumResBlocks {
		t.NumResBlocks[i] = one
	}
	return nil
}

// Validate checks that the architecture can be built.
func (c *Config) Validate() error {
	if c.ZChannels < 1 || c.ZChannels > MaxZChannels {
		return fmt.Errorf("z_channels %d is outside [1, %d]", c.ZChannels, MaxZChannels)
	}
	if c.GroupNormGroups < 1 {
		return fmt.Errorf("group_norm_groups must be positive, got %d", c.GroupNormGroups)
	}
	if c.GroupNormEps <= 0 {
		return fmt.Errorf("group_norm_eps must be positive, got %g", c.GroupNormEps)
	}
	for _, t := range []struct {
		name  string
		tower Tower
	}{{"encoder", c.Encoder}, {"decoder", c.Decoder}} {
		if err := c.validateTower(t.name, t.tower); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateTower(name string, t Tower) error {
	if t.Ch < 1 {
		return fmt.Errorf("%s.ch must be positive, got %d", name, t.Ch)
	}
	if len(t.ChMult) == 0 || len(t.ChMult) > 16 {
		return fmt.Errorf("%s.ch_mult has %d levels; want 1 to 16", name, len(t.ChMult))
	}
	if len(t.NumResBlocks) != len(t.ChMult) {
		return fmt.Errorf("%s.num_res_blocks %v has %d entries but ch_mult %v has %d levels",
			name, t.NumResBlocks, len(t.NumResBlocks), t.ChMult, len(t.ChMult))
	}
	for i, m := range t.ChMult {
		if m < 1 {
			return fmt.Errorf("%s.ch_mult[%d] must be positive, got %d", name, i, m)
		}
		if ch := t.Ch * m; ch%c.GroupNormGroups != 0 {
			return fmt.Errorf("%s level %d has %d channels, which do not split into %d GroupNorm groups", name, i, ch, c.GroupNormGroups)
		}
		if t.NumResBlocks[i] < 0 {
			return fmt.Errorf("%s.num_res_blocks[%d] must not be negative, got %d", name, i, t.NumResBlocks[i])
		}
	}
	if t.Ch%c.GroupNormGroups != 0 {
		return fmt.Errorf("%s.ch %d does not split into %d GroupNorm groups", name, t.Ch, c.GroupNormGroups)
	}
	return nil
}
