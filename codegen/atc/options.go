package atc

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// InputShape gives the shape of one ONNX graph input for --input_shape.
type InputShape struct {
	// Name is the ONNX graph input name.
	Name string
	// Dims are the dimensions. -1 marks a dynamic dimension, and an empty
	// list marks a scalar.
	Dims []int64
}

// Options configures one ATC run that converts an ONNX model to an OM file.
// Model, Output and WorkDir are relative to the current directory of the
// calling process.
type Options struct {
	// ATC is the path of the atc executable. Empty looks up "atc" on PATH.
	ATC string
	// Model is the .onnx file.
	Model string
	// Output is the OM path without the .om suffix, which ATC appends.
	Output string
	// SoC is the --soc_version value, which names the chip the OM will run
	// on. ValidateSoC lists the accepted names.
	SoC string
	// InputShapes is the value of --input_shape, in any input order. ATC
	// needs it when an ONNX input has a non-fixed dimension.
	InputShapes []InputShape
	// DynamicDims lists the gears for --dynamic_dims: each gear gives a value
	// for every -1 in InputShapes, in input order and then dimension order.
	// ATC compiles each gear as a static graph and needs 2 to 100 of them.
	// Empty with -1 dimensions present builds a fully dynamic-shape model.
	DynamicDims [][]int64
	// InputFormat is --input_format: "ND" (the default here), "NCHW" or
	// "NCDHW". ATC requires ND with --dynamic_dims.
	InputFormat string
	// PrecisionMode is --precision_mode_v2. Empty means "fp16", ATC's
	// default. PrecisionModes lists the values.
	PrecisionMode string
	// LogLevel is --log: debug, info, warning, error or null. Empty means
	// "error". ATC writes its log to the CANN log directory unless
	// ASCEND_SLOG_PRINT_TO_STDOUT=1 is set in its environment.
	LogLevel string
	// Timeout bounds the run. 0 means no limit beyond the context.
	Timeout time.Duration
	// WorkDir is the directory ATC runs in. Empty means the directory of
	// Model: ATC resolves the locations of external tensor data relative to
	// the .onnx file, and runs from another directory have been reported to
	// miss them.
	WorkDir string
	// ExtraArgs are appended after the generated flags, each in the form
	// --name=value. They must not repeat a flag that Options sets.
	ExtraArgs []string
}

// Defaults for the optional fields.
const (
	DefaultInputFormat = "ND"
	DefaultLogLevel    = "error"
)

// Limits that ATC's documentation gives for --dynamic_dims.
const (
	MinGears = 2
	MaxGears = 100
)

var (
	inputFormats = []string{"ND", "NCHW", "NCDHW"}
	logLevels    = []string{"debug", "info", "warning", "error", "null"}
)

// managedFlags are the flags that Args writes itself.
var managedFlags = []string{
	"framework", "model", "output", "soc_version", "input_shape",
	"dynamic_dims", "input_format", "precision_mode_v2", "log",
}

// Args validates the options and returns ATC's arguments, without the
// executable, in this order:
//
//	--framework=5 --model=M --output=O --soc_version=S [--input_shape=...]
//	[--dynamic_dims=...] --input_format=F --precision_mode_v2=P --log=L [ExtraArgs...]
//
// Model and Output are written relative to the working directory when they
// lie inside it, and as absolute paths otherwise. The values are not quoted
// because no shell is involved; CommandLine quotes them for one.
func (o Options) Args() ([]string, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	workDir, err := o.workDir()
	if err != nil {
		return nil, err
	}
	model, err := pathFrom(workDir, o.Model)
	if err != nil {
		return nil, err
	}
	output, err := pathFrom(workDir, o.Output)
	if err != nil {
		return nil, err
	}

	args := []string{
		"--framework=5", // 5 selects the ONNX parser
		"--model=" + model,
		"--output=" + output,
		"--soc_version=" + o.SoC,
	}
	if len(o.InputShapes) > 0 {
		args = append(args, "--input_shape="+formatInputShapes(o.InputShapes))
	}
	if len(o.DynamicDims) > 0 {
		args = append(args, "--dynamic_dims="+formatGears(o.DynamicDims))
	}
	args = append(args,
		"--input_format="+withDefault(o.InputFormat, DefaultInputFormat),
		"--precision_mode_v2="+withDefault(o.PrecisionMode, DefaultPrecisionMode),
		"--log="+withDefault(o.LogLevel, DefaultLogLevel),
	)
	return append(args, o.ExtraArgs...), nil
}

// CommandLine returns a shell command that runs the same conversion, for
// users who run ATC themselves on a machine with CANN: a cd into the working
// directory followed by the quoted atc invocation. The CANN environment
// (set_env.sh) must be loaded in that shell first.
func (o Options) CommandLine() (string, error) {
	args, err := o.Args()
	if err != nil {
		return "", err
	}
	workDir, err := o.workDir()
	if err != nil {
		return "", err
	}

	var b strings.Builder
	b.WriteString("cd " + shellQuote(workDir) + " && " + shellQuote(withDefault(o.ATC, "atc")))
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(quoteFlag(a))
	}
	return b.String(), nil
}

// workDir returns the absolute working directory.
func (o Options) workDir() (string, error) {
	dir := o.WorkDir
	if dir == "" {
		dir = filepath.Dir(o.Model)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve ATC working directory %q: %w", dir, err)
	}
	return abs, nil
}

// validate checks everything Args can check without touching the file
// system. Errors name the field and the value.
func (o Options) validate() error {
	if o.Model == "" {
		return errors.New("atc options: Model is empty; set it to the .onnx file to convert")
	}
	if o.Output == "" {
		return errors.New("atc options: Output is empty; set it to the OM path without the .om suffix")
	}
	if strings.HasSuffix(o.Output, ".om") {
		return fmt.Errorf("atc options: Output %q ends in .om; drop the suffix because ATC appends it", o.Output)
	}
	if err := ValidateSoC(o.SoC); err != nil {
		return fmt.Errorf("atc options: %w", err)
	}

	dynamicCount, err := validateInputShapes(o.InputShapes)
	if err != nil {
		return fmt.Errorf("atc options: %w", err)
	}
	if err := validateGears(o.DynamicDims, dynamicCount); err != nil {
		return fmt.Errorf("atc options: %w", err)
	}

	format := withDefault(o.InputFormat, DefaultInputFormat)
	if !slices.Contains(inputFormats, format) {
		return fmt.Errorf("atc options: invalid InputFormat %q: use one of %s", o.InputFormat, strings.Join(inputFormats, ", "))
	}
	if len(o.DynamicDims) > 0 && format != "ND" {
		return fmt.Errorf("atc options: InputFormat %q cannot be used with DynamicDims; ATC requires ND there", o.InputFormat)
	}
	if err := validatePrecision(withDefault(o.PrecisionMode, DefaultPrecisionMode), o.SoC); err != nil {
		return fmt.Errorf("atc options: %w", err)
	}
	if level := withDefault(o.LogLevel, DefaultLogLevel); !slices.Contains(logLevels, level) {
		return fmt.Errorf("atc options: invalid LogLevel %q: use one of %s", o.LogLevel, strings.Join(logLevels, ", "))
	}
	if o.Timeout < 0 {
		return fmt.Errorf("atc options: Timeout %v is negative; use 0 for no limit", o.Timeout)
	}
	return validateExtraArgs(o.ExtraArgs, len(o.DynamicDims) > 0)
}

// validateInputShapes checks names and dimensions and returns the number of
// dynamic (-1) dimensions.
func validateInputShapes(shapes []InputShape) (int, error) {
	dynamic := 0
	seen := map[string]bool{}
	for i, s := range shapes {
		if s.Name == "" {
			return 0, fmt.Errorf("InputShapes[%d] has an empty name; use the ONNX graph input name", i)
		}
		if strings.ContainsAny(s.Name, ":;,\n") {
			// These characters separate fields of --input_shape.
			return 0, fmt.Errorf("InputShapes[%d] name %q contains one of : ; , or a newline, which --input_shape cannot carry; rename the ONNX input", i, s.Name)
		}
		if seen[s.Name] {
			return 0, fmt.Errorf("InputShapes[%d] repeats input %q", i, s.Name)
		}
		seen[s.Name] = true
		for j, d := range s.Dims {
			switch {
			case d == -1:
				dynamic++
			case d < 1:
				return 0, fmt.Errorf("InputShapes[%d] (%s) dimension %d is %d; use a positive size or -1 for a dynamic dimension", i, s.Name, j, d)
			}
		}
	}
	return dynamic, nil
}

// validateGears checks the --dynamic_dims gears against the number of -1
// dimensions.
func validateGears(gears [][]int64, dynamicCount int) error {
	if len(gears) == 0 {
		return nil
	}
	if dynamicCount == 0 {
		return errors.New("DynamicDims is set but no InputShapes dimension is -1; mark the dimensions the gears fill with -1")
	}
	if len(gears) < MinGears || len(gears) > MaxGears {
		return fmt.Errorf("DynamicDims has %d gear(s); ATC takes %d to %d (for a single shape, write it into InputShapes)", len(gears), MinGears, MaxGears)
	}
	seen := map[string]int{}
	for i, g := range gears {
		if len(g) != dynamicCount {
			return fmt.Errorf("DynamicDims[%d] has %d values, but InputShapes has %d dimensions set to -1; give one value per -1", i, len(g), dynamicCount)
		}
		for j, v := range g {
			if v < 1 {
				return fmt.Errorf("DynamicDims[%d][%d] is %d; gear values must be positive", i, j, v)
			}
		}
		key := formatInts(g)
		if first, dup := seen[key]; dup {
			return fmt.Errorf("DynamicDims[%d] repeats gear %d (%s)", i, first, key)
		}
		seen[key] = i
	}
	return nil
}

// validateExtraArgs rejects extra flags that Options already writes or that
// conflict with them.
func validateExtraArgs(extra []string, hasGears bool) error {
	for i, a := range extra {
		if !strings.HasPrefix(a, "--") {
			return fmt.Errorf("atc options: ExtraArgs[%d] %q is not a flag; write it as --name=value", i, a)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		switch {
		case slices.Contains(managedFlags, name):
			return fmt.Errorf("atc options: ExtraArgs[%d] sets --%s, which Options already writes; use the Options field instead", i, name)
		case name == "precision_mode":
			return fmt.Errorf("atc options: ExtraArgs[%d] sets --precision_mode, which ATC cannot combine with --precision_mode_v2; use PrecisionMode", i)
		case name == "mode":
			return fmt.Errorf("atc options: ExtraArgs[%d] sets --mode; Run only builds OM files (ATC's default mode 0)", i)
		case hasGears && (name == "dynamic_batch_size" || name == "dynamic_image_size"):
			return fmt.Errorf("atc options: ExtraArgs[%d] sets --%s, which ATC does not allow together with --dynamic_dims", i, name)
		}
	}
	return nil
}

// formatInputShapes returns "name:d0,d1;name2:d0", with "name:" for a scalar.
func formatInputShapes(shapes []InputShape) string {
	parts := make([]string, len(shapes))
	for i, s := range shapes {
		parts[i] = s.Name + ":" + formatInts(s.Dims)
	}
	return strings.Join(parts, ";")
}

// formatGears returns "a1,b1;a2,b2".
func formatGears(gears [][]int64) string {
	parts := make([]string, len(gears))
	for i, g := range gears {
		parts[i] = formatInts(g)
	}
	return strings.Join(parts, ";")
}

func formatInts(v []int64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(parts, ",")
}

// pathFrom returns path relative to dir when it lies inside dir, and the
// absolute path otherwise.
func pathFrom(dir, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolve path %q: %w", path, err)
	}
	if rel, err := filepath.Rel(dir, abs); err == nil && filepath.IsLocal(rel) {
		return rel, nil
	}
	return abs, nil
}

func withDefault(value, def string) string {
	if value == "" {
		return def
	}
	return value
}

// quoteFlag quotes the value of a --name=value argument for a POSIX shell,
// leaving the flag name bare so the command stays readable.
func quoteFlag(arg string) string {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || !strings.HasPrefix(name, "--") || shellQuote(name) != name {
		return shellQuote(arg)
	}
	return name + "=" + shellQuote(value)
}

// shellQuote returns s unchanged when it contains only characters that a
// POSIX shell reads literally, and single-quoted otherwise.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-+=:,./@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
