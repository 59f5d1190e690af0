package bench

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"text/tabwriter"
)

// Result is the measurement of one scenario on one target. The JSON form
// is what `mmadac bench --json` prints.
type Result struct {
	// Name, Backend and Pipeline come from the target.
	Name     string `json:"name"`
	Backend  string `json:"backend"`
	Pipeline string `json:"pipeline"`
	// HeadFolding is true when steps ran the folded sampling head.
	HeadFolding bool `json:"head_folding"`
	// Mode is "exact" or the opt-in acceleration used.
	Mode     string   `json:"mode"`
	Scenario Scenario `json:"scenario"`
	// Threads is the backend's intra-op thread count.
	Threads int `json:"threads"`

	// Steps is the number of model calls timed.
	Steps int `json:"steps"`
	// Seconds is the wall time of the whole timed run.
	Seconds float64 `json:"seconds"`
	// Tokens is the run's output count: generated text tokens, image
	// tokens, or (forward) tokens processed.
	Tokens          int     `json:"tokens"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	// StepMS holds every step's latency in milliseconds and Unmasked the
	// tokens each step unmasked (empty for forward).
	StepMS   []float64 `json:"step_ms"`
	Unmasked []int     `json:"unmasked_per_step,omitempty"`
	// MedianMS, P90MS and MeanMS summarise StepMS (p90 by nearest rank).
	MedianMS float64 `json:"step_ms_median"`
	P90MS    float64 `json:"step_ms_p90"`
	MeanMS   float64 `json:"step_ms_mean"`

	// FLOPsPerStep counts the floating-point operations of one model call
	// from the graph that ran (passes.Stats at the run's sizes); 0, and
	// left out of the JSON, when unknown.
	FLOPsPerStep int64 `json:"flops_per_step,omitempty"`
	// GFLOPS is FLOPsPerStep over the median step latency, host work of
	// the sampler included.
	GFLOPS float64 `json:"gflops,omitempty"`
	// PeakGFLOPS is the calibrated matrix-product peak and PeakFraction
	// GFLOPS over it; both 0, and left out of the JSON, when no peak was
	// given.
	PeakGFLOPS   float64 `json:"peak_gflops,omitempty"`
	PeakFraction float64 `json:"peak_fraction,omitempty"`

	// PeakRSSBytes is the process's resident-set high-water mark during
	// the run (reset before it where the kernel allows; see peakRSS).
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// BytesToGoPerStep is the mean size of the model outputs copied from
	// the backend into Go per step; BytesFromGoPerStep the size of the
	// inputs the backend reads from Go memory per step.
	BytesToGoPerStep   int64 `json:"bytes_to_go_per_step"`
	BytesFromGoPerStep int64 `json:"bytes_from_go_per_step"`

	// LoadBefore and LoadAfter are the 1, 5 and 15 minute load averages
	// (/proc/loadavg) around the run.
	LoadBefore [3]float64 `json:"load_before"`
	LoadAfter  [3]float64 `json:"load_after"`

	// Agreement compares an accelerated run with exact decoding.
	Agreement *Agreement `json:"agreement,omitempty"`

	// Output holds the final sequences (text, prompt included) or codes.
	Output [][]int64 `json:"-"`
	// PromptLength is the prompt length of Output's text rows.
	PromptLength int `json:"-"`

	bytesToGo, bytesFromGo int64
	flopRows, flopNPos     int64
	// stepNPos holds, when the model reports it, the positions each
	// step's head computed; FLOPs are then averaged over the steps.
	stepNPos []int64
}

// summarize computes the statistics from the recorded steps.
func (r *Result) summarize(t Target, peak float64) {
	r.Steps = len(r.StepMS)
	if r.Steps == 0 {
		return
	}
	r.MedianMS = percentile(r.StepMS, 0.5)
	r.P90MS = percentile(r.StepMS, 0.9)
	sum := 0.0
	for _, v := range r.StepMS {
		sum += v
	}
	r.MeanMS = sum / float64(r.Steps)
	if r.Seconds > 0 {
		r.TokensPerSecond = float64(r.Tokens) / r.Seconds
	}
	r.BytesToGoPerStep = r.bytesToGo / int64(r.Steps)
	r.BytesFromGoPerStep = r.bytesFromGo
	if t.FLOPs != nil {
		seq := int64(r.Scenario.SequenceLength())
		r.FLOPsPerStep = t.FLOPs(r.flopRows, seq, r.flopNPos)
		if len(r.stepNPos) == r.Steps {
			total := int64(0)
			for _, n := range r.stepNPos {
				total += t.FLOPs(r.flopRows, seq, n)
			}
			r.FLOPsPerStep = total / int64(r.Steps)
		}
		r.GFLOPS = float64(r.FLOPsPerStep) / (r.MedianMS * 1e6)
	}
	if peak > 0 && r.GFLOPS > 0 {
		r.PeakGFLOPS = peak
		r.PeakFraction = r.GFLOPS / peak
	}
}

// percentile returns the nearest-rank percentile of values, fraction in
// (0, 1]: the smallest value with at least that fraction of values at or
// below it. The median of an even count is the lower middle value.
func percentile(values []float64, fraction float64) float64 {
	if len(values) == 0 {
		return math.NaN()
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	rank := max(1, int(math.Ceil(fraction*float64(len(sorted)))))
	return sorted[rank-1]
}

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xf0a4)) }

// WriteTable prints results as an aligned table for people.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "target\tscenario\tmode\tseq\tsteps\tseconds\tms/step p50\tp90\ttokens/s\tGFLOP/s\t% peak\tpeak RSS MB\tto Go B/step\tfrom Go B/step\tload 1m\t")
	for _, r := range results {
		peak := "-"
		if r.PeakFraction > 0 {
			peak = fmt.Sprintf("%.0f%%", 100*r.PeakFraction)
		}
		gflops := "-"
		if r.GFLOPS > 0 {
			gflops = fmt.Sprintf("%.1f", r.GFLOPS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.2f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%.0f\t%d\t%d\t%.2f\t\n",
			r.Name, r.Scenario.Kind, r.Mode, r.Scenario.SequenceLength(), r.Steps, r.Seconds, r.MedianMS, r.P90MS,
			r.TokensPerSecond, gflops, peak, float64(r.PeakRSSBytes)/(1<<20), r.BytesToGoPerStep, r.BytesFromGoPerStep, r.LoadBefore[0])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if a := r.Agreement; a != nil {
			fmt.Fprintf(w, "%s %s, %s against exact: speed-up %.2fx in time (%d steps against %d), %.1f%% of generated positions equal (%d of %d)\n",
				r.Name, r.Scenario.Kind, r.Mode, a.SpeedUp, a.Steps, a.ExactSteps, 100*a.Fraction, a.Equal, a.Positions)
		}
	}
	return nil
}
