package bench

import (
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Plot geometry in SVG user units.
const (
	plotWidth   = 820
	panelHeight = 220
	marginLeft  = 70
	marginRight = 20
	marginTop   = 40
	panelGap    = 60
	legendRow   = 18
	// legendTop is the first legend row's offset below the lower panel,
	// clear of the step axis label.
	legendTop = 56
)

// seriesColors cycles over the results of one plot.
var seriesColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// WritePlot draws an SVG with two panels over the step index: the step
// latency in milliseconds (top) and the tokens unmasked at each step
// (bottom), one colored line per result.
func WritePlot(w io.Writer, results []*Result) error {
	var plotted []*Result
	for _, r := range results {
		if len(r.StepMS) > 0 {
			plotted = append(plotted, r)
		}
	}
	if len(plotted) == 0 {
		return errors.New("no result has steps to plot")
	}
	maxSteps, maxMS, maxTok := 1, 0.0, 1
	for _, r := range plotted {
		maxSteps = max(maxSteps, len(r.StepMS))
		for _, v := range r.StepMS {
			maxMS = max(maxMS, v)
		}
		for _, n := range r.Unmasked {
			maxTok = max(maxTok, n)
		}
	}
	// Four grid intervals of a round size, so every tick label is round.
	maxMS = 4 * niceCeil(maxMS/4)
	maxTokF := 4 * max(1, niceCeil(float64(maxTok)/4))

	legend := len(plotted) * legendRow
	height := marginTop + 2*panelHeight + panelGap + legendTop + legend
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotWidth, height)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")

	top := marginTop
	bottom := marginTop + panelHeight + panelGap
	drawAxes(&sb, top, "step latency (ms)", maxMS, maxSteps)
	drawAxes(&sb, bottom, "tokens unmasked per step", maxTokF, maxSteps)
	for i, r := range plotted {
		color := seriesColors[i%len(seriesColors)]
		ms := make([]float64, len(r.StepMS))
		copy(ms, r.StepMS)
		drawLine(&sb, top, ms, maxMS, maxSteps, color)
		tok := make([]float64, len(r.Unmasked))
		for j, n := range r.Unmasked {
			tok[j] = float64(n)
		}
		drawLine(&sb, bottom, tok, maxTokF, maxSteps, color)
		y := bottom + panelHeight + legendTop + i*legendRow
		label := fmt.Sprintf("%s, %s, %s: median %.1f ms, p90 %.1f ms, %d steps", r.Name, r.Scenario.Kind, r.Mode, r.MedianMS, r.P90MS, len(r.StepMS))
		fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			marginLeft, y-10, color, marginLeft+18, y, html.EscapeString(label))
	}
	sb.WriteString("</svg>\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so that axis
// labels read well.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*p >= v {
			return f * p
		}
	}
	return 10 * p
}

// drawAxes draws one panel's frame, four value grid lines and the step
// axis labels.
func drawAxes(sb *strings.Builder, top int, title string, maxY float64, steps int) {
	inner := plotWidth - marginLeft - marginRight
	fmt.Fprintf(sb, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", marginLeft, top-10, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		y := float64(top) + float64(panelHeight)*(1-float64(i)/4)
		fmt.Fprintf(sb, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", marginLeft, y, marginLeft+inner, y)
		fmt.Fprintf(sb, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginLeft-6, y+4, formatTick(maxY*float64(i)/4))
	}
	fmt.Fprintf(sb, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", marginLeft, top, inner, panelHeight)
	// Step labels at a round spacing, from step 1.
	spacing := max(1, int(niceCeil(float64(steps-1)/4)))
	for step := 0; step < steps; step += spacing {
		x := float64(marginLeft) + xFraction(step, steps)*float64(inner)
		fmt.Fprintf(sb, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x, top+panelHeight+16, step+1)
	}
	fmt.Fprintf(sb, `<text x="%d" y="%d" text-anchor="middle">step</text>`+"\n", marginLeft+inner/2, top+panelHeight+32)
}

// xFraction places step i (0-based) of n across the panel width.
func xFraction(i, n int) float64 {
	if n <= 1 {
		return 0.5
	}
	return float64(i) / float64(n-1)
}

func drawLine(sb *strings.Builder, top int, values []float64, maxY float64, steps int, color string) {
	if len(values) == 0 {
		return
	}
	inner := float64(plotWidth - marginLeft - marginRight)
	pts := make([]string, len(values))
	for i, v := range values {
		x := float64(marginLeft) + xFraction(i, steps)*inner
		y := float64(top) + float64(panelHeight)*(1-min(v, maxY)/maxY)
		pts[i] = fmt.Sprintf("%.1f,%.1f", x, y)
	}
	fmt.Fprintf(sb, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
}

func formatTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
