package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// MaxInlineConst is the largest constant, in elements, whose values the
// text form prints; larger constants print as a digest with their size.
const MaxInlineConst = 64

// Print writes the graph in the text form described in doc.go. Values are
// renumbered in order of appearance, so two graphs that differ only in the
// history of their value IDs print identically.
func Print(w io.Writer, g *Graph) error {
	p := printer{names: map[*Value]string{}}
	p.graph(g)
	_, err := io.WriteString(w, p.sb.String())
	return err
}

// String returns the text form of the graph.
func (g *Graph) String() string {
	var sb strings.Builder
	_ = Print(&sb, g)
	return sb.String()
}

type printer struct {
	sb    strings.Builder
	names map[*Value]string
	next  int
}

func (p *printer) name(v *Value) string {
	if n, ok := p.names[v]; ok {
		return n
	}
	var n string
	if v.Name != "" && (v.Kind == KindInput || v.Kind == KindParam) {
		n = "%" + v.Name
	} else {
		n = "%" + strconv.Itoa(p.next)
		p.next++
	}
	p.names[v] = n
	return n
}

func (p *printer) ref(v *Value) string {
	if n, ok := p.names[v]; ok {
		return n
	}
	return "%<undefined " + strconv.Itoa(v.ID) + ">"
}

func (p *printer) graph(g *Graph) {
	fmt.Fprintf(&p.sb, "graph @%s {\n", g.Name)
	keys := make([]string, 0, len(g.Meta))
	for k := range g.Meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&p.sb, "  meta %q = %q\n", k, g.Meta[k])
	}
	for _, v := range g.Inputs {
		fmt.Fprintf(&p.sb, "  input %s : %s\n", p.name(v), v.Type)
	}
	for _, v := range g.Params {
		fmt.Fprintf(&p.sb, "  param %s : %s\n", p.name(v), v.Type)
	}
	for _, v := range g.Consts {
		fmt.Fprintf(&p.sb, "  const %s : %s = %s\n", p.name(v), v.Type, constText(v.Const))
	}
	for _, n := range g.Nodes {
		outs := make([]string, len(n.Outputs))
		types := make([]string, len(n.Outputs))
		for i, o := range n.Outputs {
			outs[i] = p.name(o)
			types[i] = o.Type.String()
		}
		ins := make([]string, len(n.Inputs))
		for i, in := range n.Inputs {
			ins[i] = p.ref(in)
		}
		fmt.Fprintf(&p.sb, "  %s = %s", strings.Join(outs, ", "), n.Op)
		if len(ins) > 0 {
			p.sb.WriteString(" " + strings.Join(ins, ", "))
		}
		if len(n.Attrs) > 0 {
			p.sb.WriteString(" {" + attrsText(n.Attrs) + "}")
		}
		p.sb.WriteString(" : " + strings.Join(types, ", ") + "\n")
	}
	for _, o := range g.Outputs {
		fmt.Fprintf(&p.sb, "  output %s = %s\n", o.Name, p.ref(o.Value))
	}
	p.sb.WriteString("}\n")
}

func attrsText(a Attrs) string {
	parts := make([]string, 0, len(a))
	for _, k := range a.Keys() {
		parts = append(parts, k+"="+attrValueText(a[k]))
	}
	return strings.Join(parts, ", ")
}

func attrValueText(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return floatText(x, 64)
	case string:
		return strconv.Quote(x)
	case DType:
		return x.String()
	case []int64:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = strconv.FormatInt(e, 10)
		}
		return "[" + strings.Join(s, ",") + "]"
	case []float64:
		s := make([]string, len(x))
		for i, e := range x {
			s[i] = floatText(e, 64)
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	panic(fmt.Sprintf("ir: attribute value of unsupported type %T", v))
}

// floatText prints a float so that it reads back exactly and never looks
// like an integer.
func floatText(x float64, bits int) string {
	switch {
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	case math.IsNaN(x):
		return "nan"
	}
	s := strconv.FormatFloat(x, 'g', -1, bits)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// constText prints small constants as a value list and large ones as a
// digest, "dense<sha256:...>", which the parser keeps as opaque data.
func constText(t *Tensor) string {
	if t == nil {
		return "dense<missing>"
	}
	if od, ok := t.Data.(OpaqueData); ok {
		return "dense<" + string(od) + ">"
	}
	if t.Len() > MaxInlineConst {
		return "dense<" + Digest(t) + ">"
	}
	s := make([]string, 0, t.Len())
	switch d := t.Data.(type) {
	case []float32:
		for _, e := range d {
			s = append(s, floatText(float64(e), 32))
		}
	case []float64:
		for _, e := range d {
			s = append(s, floatText(e, 64))
		}
	case []int64:
		for _, e := range d {
			s = append(s, strconv.FormatInt(e, 10))
		}
	case []int32:
		for _, e := range d {
			s = append(s, strconv.FormatInt(int64(e), 10))
		}
	case []bool:
		for _, e := range d {
			s = append(s, strconv.FormatBool(e))
		}
	case []uint16:
		for _, e := range d {
			s = append(s, "0x"+strconv.FormatUint(uint64(e), 16))
		}
	}
	return "[" + strings.Join(s, ",") + "]"
}

// OpaqueData stands for the data of a large constant read back from text:
// its digest is known, its values are not.
type OpaqueData string

// Digest returns "sha256:<hex>" of the tensor's little-endian bytes.
func Digest(t *Tensor) string {
	h := sha256.New()
	_, _ = h.Write(TensorBytes(t))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}
