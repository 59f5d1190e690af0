package atc

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Report is one coded message block from ATC's output, such as
//
//	E16002: No ONNX parser is registered for optype ai.onnx::19::Add.
//	        TraceBack (most recent call last):
//	        ...
type Report struct {
	// Code is the error-manager code: E followed by five characters for
	// errors (E1xxxx parameter and user errors, E19999 internal, EZxxxx
	// operator and kernel errors), W for warnings.
	Code string `json:"code"`
	// Message is the text after the code on the first line.
	Message string `json:"message"`
	// Detail holds the following lines of the block, trimmed.
	Detail []string `json:"detail,omitempty"`
}

// Error reports a failed ATC run: a non-zero exit, a timeout, or an exit
// without a valid OM file. Code, Message, Op and OpType come from the first
// error report in the output; Output keeps the output itself.
type Error struct {
	// Code is the first error code found, e.g. "E16002"; empty when the
	// output carries none.
	Code string
	// Message is the first line of that report, or ATC's failure line, or
	// the last output line when ATC printed neither. After an exit with
	// status 0 it describes what is wrong with the result.
	Message string
	// Op and OpType name the failing operator when the output names one.
	// OpType is the bare type ("Add" for "ai.onnx::19::Add").
	Op     string
	OpType string
	// Output is the text ATC wrote to stdout and stderr (the last MiB when
	// longer).
	Output string
	// Reports are all coded error blocks in output order.
	Reports []Report
	// ExitCode is the process exit status, or -1 when it did not exit on
	// its own (killed after a timeout) or was never started.
	ExitCode int
	// Err is the cause: the exec error, context.DeadlineExceeded after a
	// timeout, or the context's error after a cancellation.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case errors.Is(e.Err, context.DeadlineExceeded):
		b.WriteString("atc timed out and was stopped")
	case errors.Is(e.Err, context.Canceled):
		b.WriteString("atc was canceled")
	case e.ExitCode == 0:
		// Message describes what is wrong with the result, e.g. "wrote no OM file at ...".
		b.WriteString("atc exited with status 0 but")
	case e.ExitCode > 0:
		fmt.Fprintf(&b, "atc failed with exit status %d", e.ExitCode)
	default:
		b.WriteString("atc failed")
	}

	if e.Code != "" {
		fmt.Fprintf(&b, ": %s: %s", e.Code, e.Message)
		if len(e.Reports) > 0 && e.Reports[0].Code == e.Code && len(e.Reports[0].Detail) > 0 {
			b.WriteString(" | ")
			b.WriteString(stripSourceTags(e.Reports[0].Detail[0]))
		}
	} else if e.ExitCode == 0 {
		b.WriteString(" ")
		b.WriteString(e.Message)
	} else if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}

	switch {
	case e.Op != "" && e.OpType != "":
		fmt.Fprintf(&b, " (op %s, type %s)", e.Op, e.OpType)
	case e.Op != "":
		fmt.Fprintf(&b, " (op %s)", e.Op)
	case e.OpType != "":
		fmt.Fprintf(&b, " (op type %s)", e.OpType)
	}
	if n := len(e.Reports); n > 1 {
		fmt.Fprintf(&b, "; %d more error reports in the output", n-1)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// failureLine is the line ATC prints before its error reports.
const failureLine = "ATC run failed"

var (
	// reportStart matches a line that opens a coded block. The code must end
	// in three digits so that words such as "ERRORS" do not match.
	reportStart = regexp.MustCompile(`^\s*([EW][0-9A-Z]{2}[0-9]{3})(?::\s*|\s+|$)(.*)$`)

	// sourceTags are the [FUNC:..][FILE:..][LINE:..] suffixes of GE messages.
	sourceTags = regexp.MustCompile(`\s*\[FUNC:[^\]]*\]\[FILE:[^\]]*\]\[LINE:\d+\]`)

	// Patterns that name the failing operator, tried in this order.
	nodeWithType = regexp.MustCompile(`\bnode:\s*([^\s(),\[\]]+)\(([^()\s]+)\)`)
	opForType    = regexp.MustCompile(`(?i)\bfor \[([^\]]+)\],\s*optype \[([^\]]+)\]`)
	opName       = regexp.MustCompile(`(?i)\b(?:op|node)(?:_?name|\s+name)?\s*\[([^\]]+)\]`)
	opTypeTag    = regexp.MustCompile(`(?i)\b(?:op_?type|op type|optype|type)\s*\[([^\]]+)\]`)
	onnxOpType   = regexp.MustCompile(`(?i)\boptype\s+([A-Za-z0-9_.]+(?:::[A-Za-z0-9_.]+)*)`)
)

// parseOutput splits ATC's output into coded error and warning reports and
// returns the "ATC run failed" line when present. A line with the same code
// as the open report continues it, as GE repeats the code on follow-up lines
// of one message. A blank line or a new code ends a report.
func parseOutput(out string) (errs, warnings []Report, failure string) {
	var cur *Report
	flush := func() {
		if cur == nil {
			return
		}
		if cur.Code[0] == 'W' {
			warnings = append(warnings, *cur)
		} else {
			errs = append(errs, *cur)
		}
		cur = nil
	}

	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			flush()
		case strings.HasPrefix(trimmed, failureLine):
			flush()
			if failure == "" {
				failure = trimmed
			}
		case reportStart.MatchString(line):
			m := reportStart.FindStringSubmatch(line)
			if cur != nil && cur.Code == m[1] {
				cur.Detail = append(cur.Detail, strings.TrimSpace(m[2]))
				continue
			}
			flush()
			cur = &Report{Code: m[1], Message: strings.TrimSpace(m[2])}
		case cur != nil:
			cur.Detail = append(cur.Detail, trimmed)
		}
	}
	flush()
	return errs, warnings, failure
}

// findOp returns the operator name and type that the reports mention first.
func findOp(reports []Report) (op, opType string) {
	for _, r := range reports {
		for _, line := range append([]string{r.Message}, r.Detail...) {
			if op == "" || opType == "" {
				if m := nodeWithType.FindStringSubmatch(line); m != nil {
					op, opType = firstNonEmpty(op, m[1]), firstNonEmpty(opType, m[2])
				}
			}
			if op == "" || opType == "" {
				if m := opForType.FindStringSubmatch(line); m != nil {
					op, opType = firstNonEmpty(op, m[1]), firstNonEmpty(opType, m[2])
				}
			}
			if op == "" {
				if m := opName.FindStringSubmatch(line); m != nil {
					op = m[1]
				}
			}
			if opType == "" {
				if m := opTypeTag.FindStringSubmatch(line); m != nil {
					opType = m[1]
				} else if m := onnxOpType.FindStringSubmatch(line); m != nil {
					opType = bareOpType(m[1])
				}
			}
			if op != "" && opType != "" {
				return op, opType
			}
		}
	}
	return op, opType
}

// bareOpType turns "ai.onnx::19::Add." into "Add".
func bareOpType(key string) string {
	key = strings.TrimRight(key, ".")
	if i := strings.LastIndex(key, "::"); i >= 0 {
		return key[i+2:]
	}
	return key
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func stripSourceTags(s string) string {
	return strings.TrimSpace(sourceTags.ReplaceAllString(s, ""))
}

// newRunError builds the Error for a failed run from ATC's output.
func newRunError(output string, exitCode int, cause error) *Error {
	errs, _, failure := parseOutput(output)
	e := &Error{Output: output, Reports: errs, ExitCode: exitCode, Err: cause}
	if len(errs) > 0 {
		e.Code = errs[0].Code
		e.Message = stripSourceTags(errs[0].Message)
		e.Op, e.OpType = findOp(errs)
	} else {
		e.Message = firstNonEmpty(failure, lastLine(output))
	}
	return e
}

// lastLine returns the last non-blank line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
