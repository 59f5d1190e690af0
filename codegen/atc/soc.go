package atc

import (
	"fmt"
	"slices"
	"strings"
)

// SoC describes one value of ATC's --soc_version flag.
type SoC struct {
	// Name is the exact --soc_version value. ATC takes the names of the
	// *.ini files in <CANN>/compiler/data/platform_config/.
	Name string
	// Family is the product generation.
	Family string
	// BF16 reports whether the chip computes in bfloat16, which the
	// mixed_bfloat16 precision mode needs.
	BF16 bool
	// Source names where the entry comes from and how certain it is.
	Source string
	// Note warns about a name that is easy to misread, or is empty.
	Note string
}

const (
	srcGE  = "CANN 8.5 source (hicann/ge device capability tables); also in a CANN 8.0-era SoC list"
	srcGE5 = "CANN 8.5 source (hicann/ge device capability tables)"
)

// knownSoCs lists the --soc_version values found in public CANN material.
// None was tried on a machine with CANN.
var knownSoCs = []SoC{
	{Name: "Ascend910B1", Family: "Atlas A2 (910B)", BF16: true, Source: srcGE},
	{Name: "Ascend910B2", Family: "Atlas A2 (910B)", BF16: true, Source: srcGE},
	{Name: "Ascend910B2C", Family: "Atlas A2 (910B)", BF16: true, Source: srcGE},
	{Name: "Ascend910B3", Family: "Atlas A2 (910B)", BF16: true, Source: srcGE},
	{Name: "Ascend910B4", Family: "Atlas A2 (910B)", BF16: true, Source: srcGE},
	{Name: "Ascend910B4-1", Family: "Atlas A2 (910B)", BF16: true, Source: srcGE5},

	{Name: "Ascend910_9391", Family: "Atlas A3 (910C)", BF16: true, Source: srcGE5},
	{Name: "Ascend910_9381", Family: "Atlas A3 (910C)", BF16: true, Source: srcGE5},
	{Name: "Ascend910_9392", Family: "Atlas A3 (910C)", BF16: true, Source: srcGE5},
	{Name: "Ascend910_9382", Family: "Atlas A3 (910C)", BF16: true, Source: srcGE5},
	{Name: "Ascend910_9372", Family: "Atlas A3 (910C)", BF16: true, Source: srcGE5},
	{Name: "Ascend910_9362", Family: "Atlas A3 (910C)", BF16: true, Source: srcGE5},

	{Name: "Ascend910A", Family: "first-generation 910", Source: srcGE},
	{Name: "Ascend910ProA", Family: "first-generation 910", Source: srcGE},
	{Name: "Ascend910ProB", Family: "first-generation 910", Source: srcGE},
	{Name: "Ascend910PremiumA", Family: "first-generation 910", Source: srcGE},
	{Name: "Ascend910B", Family: "first-generation 910", Source: srcGE,
		Note: "Ascend910B without a digit is a first-generation 910, not a 910B; for an Atlas A2 910B use the name that `npu-smi info` shows, e.g. 910B3 -> Ascend910B3"},

	{Name: "Ascend310P1", Family: "310P", Source: srcGE},
	{Name: "Ascend310P3", Family: "310P", Source: srcGE},
	{Name: "Ascend310P5", Family: "310P", Source: srcGE5},
	{Name: "Ascend310P7", Family: "310P", Source: srcGE5},

	{Name: "Ascend310", Family: "310", Source: srcGE5},
	// NOTE: the CANN docs list bf16 modes for "Atlas 200I/500 A2", which is
	// taken here to be the 310B; bfloat16 support on it is unconfirmed, so
	// BF16 stays false and mixed_bfloat16 is rejected for it.
	{Name: "Ascend310B1", Family: "310B", Source: srcGE5},
}

// LookupSoC returns the table entry for an exact --soc_version value.
func LookupSoC(name string) (SoC, bool) {
	i := slices.IndexFunc(knownSoCs, func(s SoC) bool { return s.Name == name })
	if i < 0 {
		return SoC{}, false
	}
	return knownSoCs[i], true
}

// KnownSoCs returns a copy of the SoC table in its listing order.
func KnownSoCs() []SoC {
	return slices.Clone(knownSoCs)
}

// ValidateSoC checks that name is a --soc_version value from the table. ATC
// matches names exactly, so a difference in case is an error that suggests
// the right spelling. The error lists the valid names.
func ValidateSoC(name string) error {
	if _, ok := LookupSoC(name); ok {
		return nil
	}
	if name == "" {
		return fmt.Errorf("missing SoC version: set it to the chip the model will run on (valid: %s)", socNames())
	}
	for _, s := range knownSoCs {
		if strings.EqualFold(s.Name, name) {
			return fmt.Errorf("invalid SoC version %q: ATC names are case-sensitive; use %q", name, s.Name)
		}
	}
	if name == "Ascend910" {
		// Public SoC lists do not contain the plain name, and whether ATC accepts it is unknown.
		return fmt.Errorf("invalid SoC version %q: not in the known SoC list; name the exact chip, e.g. Ascend910B3 (Atlas A2) or Ascend910A (first generation); valid: %s", name, socNames())
	}
	return fmt.Errorf("invalid SoC version %q: `npu-smi info` on the target shows the chip (910B3 -> Ascend910B3); valid: %s", name, socNames())
}

func socNames() string {
	names := make([]string, len(knownSoCs))
	for i, s := range knownSoCs {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}

// precisionMode describes one value of ATC's --precision_mode_v2 flag.
type precisionMode struct {
	name     string
	meaning  string
	requires precisionNeed // needNothing: any chip
}

type precisionNeed int

const (
	needNothing   precisionNeed = iota
	needBF16                    // chips with bfloat16 compute (Atlas A2/A3)
	needAscend950               // Ascend 950 only, and the SoC table has no 950 name
)

// DefaultPrecisionMode is ATC's default for --precision_mode_v2.
const DefaultPrecisionMode = "fp16"

// precisionModes lists the --precision_mode_v2 values documented for CANN
// 8.5 (CLI_options/--precision_mode_v2.md in hicann/ge). The CANN 7.0 docs
// already describe the flag.
var precisionModes = []precisionMode{
	{"fp16", "compute in float16 where the operator supports it (ATC's default)", needNothing},
	{"origin", "keep the dtypes of the original graph", needNothing},
	{"cube_fp16in_fp32out", "matrix units take float16 inputs and produce float32 outputs", needNothing},
	{"mixed_float16", "mixed precision with float16 for operators on the float16 list", needNothing},
	{"mixed_bfloat16", "mixed precision with bfloat16 (Atlas A2/A3 only)", needBF16},
	{"cube_hif8", "matrix units in HiFloat8 (Ascend 950 only)", needAscend950},
	{"mixed_hif8", "mixed precision with HiFloat8 (Ascend 950 only)", needAscend950},
}

// PrecisionModes returns the --precision_mode_v2 values with a one-line
// meaning each, in the order of ATC's documentation.
func PrecisionModes() [][2]string {
	out := make([][2]string, len(precisionModes))
	for i, p := range precisionModes {
		out[i] = [2]string{p.name, p.meaning}
	}
	return out
}

// validatePrecision checks mode against the table and against the SoC.
func validatePrecision(mode, soc string) error {
	i := slices.IndexFunc(precisionModes, func(p precisionMode) bool { return p.name == mode })
	if i < 0 {
		names := make([]string, len(precisionModes))
		for j, p := range precisionModes {
			names[j] = p.name
		}
		hint := ""
		if mode == "mixed_bf16" {
			hint = ` (the flag spells it "mixed_bfloat16")`
		}
		return fmt.Errorf("invalid precision mode %q%s: valid --precision_mode_v2 values are %s", mode, hint, strings.Join(names, ", "))
	}

	switch precisionModes[i].requires {
	case needBF16:
		if s, ok := LookupSoC(soc); ok && !s.BF16 {
			return fmt.Errorf("precision mode %q needs bfloat16 compute, which %s (%s) lacks; use fp16 or mixed_float16", mode, soc, s.Family)
		}
	case needAscend950:
		return fmt.Errorf("precision mode %q exists only for Ascend 950, and %s is not one; use fp16 or mixed_float16", mode, soc)
	}
	return nil
}
