package magvit

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfigHubDefaults(t *testing.T) {
	// The hub config.json contains only diffusers bookkeeping.
	cfg, err := ParseConfig([]byte(`{"_class_name": "MAGVITv2", "_diffusers_version": "0.30.0"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("config %+v, want the MAGVIT-v2 defaults", cfg)
	}
	if cfg.CodebookSize() != 8192 || cfg.Encoder.Factor() != 16 || cfg.Decoder.Factor() != 16 {
		t.Errorf("codebook %d, factors %d and %d; want 8192, 16, 16", cfg.CodebookSize(), cfg.Encoder.Factor(), cfg.Decoder.Factor())
	}
}

func TestLoadConfigTiny(t *testing.T) {
	cfg, err := LoadConfig("../../testdata/upstream-tiny/magvit")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Encoder:   Tower{Ch: 32, ChMult: []int{1, 2, 2}, NumResBlocks: []int{1, 1, 1}},
		Decoder:   Tower{Ch: 32, ChMult: []int{1, 2, 2}, NumResBlocks: []int{1, 1, 1}},
		ZChannels: 6, GroupNormGroups: 32, GroupNormEps: 1e-6,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config %+v, want %+v", cfg, want)
	}
}

func TestLoadConfigWithoutFile(t *testing.T) {
	cfg, err := LoadConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Errorf("config %+v, want the defaults", cfg)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "is not a folder") {
		t.Errorf("missing folder: error %v", err)
	}
}

func TestLoadConfigInvalidJSON(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFileName), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Errorf("error %v, want invalid JSON", err)
	}
}

func TestParseConfigSingleBlockCount(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"decoder": {"ch_mult": [1, 2], "num_res_blocks": 2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Decoder.NumResBlocks, []int{2, 2}) || cfg.Decoder.Ch != 128 {
		t.Errorf("decoder %+v, want 2 blocks on both levels and ch 128", cfg.Decoder)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, c := range []struct{ name, json, reason string }{
		{"level count", `{"encoder": {"ch_mult": [1, 2]}}`, "encoder.num_res_blocks [4 3 4 3 4] has 5 entries but ch_mult [1 2] has 2 levels"},
		{"groups", `{"decoder": {"ch": 48}}`, "do not split into 32 GroupNorm groups"},
		{"z too large", `{"z_channels": 20}`, "z_channels 20 is outside [1, 16]"},
		{"z zero", `{"z_channels": 0}`, "z_channels 0"},
		{"codebook", `{"z_channels": 6, "codebook_size": 8192}`, "codebook_size 8192 does not equal 2^z_channels = 64"},
		{"block type", `{"encoder": {"num_res_blocks": "four"}}`, "want a list with one count per level"},
		{"negative blocks", `{"encoder": {"num_res_blocks": -1}}`, "must not be negative"},
		{"zero multiplier", `{"encoder": {"ch_mult": [1, 0, 2, 2, 4]}}`, "ch_mult[1] must be positive"},
		{"eps", `{"group_norm_eps": 0}`, "group_norm_eps must be positive"},
		{"no levels", `{"encoder": {"ch_mult": [], "num_res_blocks": []}}`, "has 0 levels"},
		{"zero channels", `{"encoder": {"ch": 0}}`, "encoder.ch must be positive"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %v, want one containing %q", err, c.reason)
			}
		})
	}
}
