package ir

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseError reports where the text form is invalid and what was expected
// there. Line and Col are 1-based, and Col counts bytes.
type ParseError struct {
	Line, Col int
	Msg       string
}

// Error formats the error as "line:col: message", so that a caller reading
// a file can prefix the file name.
func (e *ParseError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// Parse reads one graph in the text form that Print writes (the grammar is
// in the package documentation). Parameters come back with a nil Source,
// constants printed as a digest come back with OpaqueData, and every node's
// result types are inferred again through the op table and must equal the
// printed ones. A syntax or typing error is returned as a *ParseError.
func Parse(r io.Reader) (*Graph, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read IR text: %w", err)
	}
	return ParseString(string(src))
}

// ParseString parses the text form held in a string; see Parse.
func ParseString(src string) (g *Graph, err error) {
	p := &parser{lx: lexer{src: src, line: 1}, labels: map[string]label{}}
	// The parser stops at the first error by panicking with a *ParseError,
	// which is recovered here. Any other panic is a bug and keeps going up.
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParseError)
			if !ok {
				panic(r)
			}
			g, err = nil, pe
		}
	}()
	p.advance()
	return p.graph(), nil
}

// Statement kinds in the order the text form lists them.
const (
	sectionMeta = iota
	sectionInput
	sectionParam
	sectionConst
	sectionNode
	sectionOutput
)

var sectionNames = [...]string{"meta", "input", "param", "const", "node", "output"}

// label is a value name defined in the text and the line defining it.
type label struct {
	v    *Value
	line int
}

type parser struct {
	lx      lexer
	tok     token // the lookahead token
	g       *Graph
	labels  map[string]label
	outputs map[string]int // output name -> line
	section int
}

// fail stops parsing with an error at the position of t.
func (p *parser) fail(t token, format string, args ...any) {
	panic(&ParseError{Line: t.line, Col: t.col, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) advance() {
	t, err := p.lx.next()
	if err != nil {
		panic(err)
	}
	p.tok = t
}

func (p *parser) isPunct(c string) bool { return p.tok.kind == tokPunct && p.tok.text == c }

func (p *parser) isWord(w string) bool { return p.tok.kind == tokWord && p.tok.text == w }

// expectPunct consumes the punctuation c. The error names context as the
// place where c was expected.
func (p *parser) expectPunct(c, context string) token {
	t := p.tok
	if !p.isPunct(c) {
		p.fail(t, "expected '%s' %s, found %s", c, context, t.describe())
	}
	p.advance()
	return t
}

// expectKind consumes a token of the given kind. The error names what as
// the expected thing.
func (p *parser) expectKind(k tokenKind, what string) token {
	t := p.tok
	if t.kind != k {
		p.fail(t, "expected %s, found %s", what, t.describe())
	}
	p.advance()
	return t
}

// endStatement consumes the line end after a statement. At the end of the
// input it consumes nothing, so the caller reports the missing '}'.
func (p *parser) endStatement(stmt string) {
	switch p.tok.kind {
	case tokNewline:
		p.advance()
	case tokEOF:
	default:
		p.fail(p.tok, "expected end of line after the %s statement, found %s", stmt, p.tok.describe())
	}
}

func (p *parser) skipNewlines() {
	for p.tok.kind == tokNewline {
		p.advance()
	}
}

func (p *parser) graph() *Graph {
	p.skipNewlines()
	if !p.isWord("graph") {
		p.fail(p.tok, "expected 'graph @name {' to start the text, found %s", p.tok.describe())
	}
	p.advance()
	name := p.expectKind(tokGlobal, "the graph name as @name")
	p.g = NewGraph(name.text)
	p.expectPunct("{", "after the graph name")
	p.endStatement("graph")
	for {
		p.skipNewlines()
		t := p.tok
		switch {
		case t.kind == tokEOF:
			p.fail(t, "unexpected end of input: expected a statement or '}' closing graph @%s", p.g.Name)
		case p.isPunct("}"):
			p.advance()
			p.skipNewlines()
			if p.tok.kind != tokEOF {
				p.fail(p.tok, "unexpected %s after the '}' closing graph @%s; the text holds one graph", p.tok.describe(), p.g.Name)
			}
			return p.g
		case p.isWord("meta"):
			p.enter(t, sectionMeta)
			p.meta()
		case p.isWord("input"):
			p.enter(t, sectionInput)
			p.declare(KindInput)
		case p.isWord("param"):
			p.enter(t, sectionParam)
			p.declare(KindParam)
		case p.isWord("const"):
			p.enter(t, sectionConst)
			p.constant()
		case p.isWord("output"):
			p.enter(t, sectionOutput)
			p.output()
		case t.kind == tokValue:
			p.enter(t, sectionNode)
			p.node()
		default:
			p.fail(t, "expected a statement (meta, input, param, const, %%result = op ..., output) or '}', found %s", t.describe())
		}
	}
}

// enter checks that statements come in the printed order. Keeping that
// order makes the value numbering of Print(Parse(text)) follow the text.
func (p *parser) enter(t token, section int) {
	if section < p.section {
		p.fail(t, "%s statement after %s statements: the text lists meta, input, param, const, node and output statements in that order",
			sectionNames[section], sectionNames[p.section])
	}
	p.section = section
}

// defineLabel binds a %name written in the text to v.
func (p *parser) defineLabel(t token, v *Value) {
	if prev, dup := p.labels[t.text]; dup {
		p.fail(t, "value %%%s is already defined at line %d", t.text, prev.line)
	}
	p.labels[t.text] = label{v: v, line: t.line}
}

func (p *parser) lookupLabel(t token) *Value {
	l, ok := p.labels[t.text]
	if !ok {
		p.fail(t, "undefined value %%%s: values must be defined on an earlier line", t.text)
	}
	return l.v
}

// meta = "meta" string "=" string .
func (p *parser) meta() {
	p.advance()
	key := p.expectKind(tokString, "the meta key as a quoted string")
	p.expectPunct("=", "after the meta key")
	val := p.expectKind(tokString, "the meta value as a quoted string")
	if p.g.Meta == nil {
		p.g.Meta = map[string]string{}
	}
	if _, dup := p.g.Meta[key.text]; dup {
		p.fail(key, "meta key %q is given twice", key.text)
	}
	p.g.Meta[key.text] = val.text
	p.endStatement("meta")
}

// declare parses "input %name : type" or "param %name : type".
func (p *parser) declare(kind ValueKind) {
	stmt := p.tok.text
	p.advance()
	name := p.expectKind(tokValue, "the "+stmt+" name as %name")
	p.expectPunct(":", "before the "+stmt+" type")
	t := p.typ()
	v := p.g.newValue(t, kind)
	// The printer numbers unnamed inputs and parameters, so a label of
	// digits only is such a number, not a name.
	if !isDigits(name.text) {
		v.Name = name.text
	}
	p.defineLabel(name, v)
	if kind == KindInput {
		p.g.Inputs = append(p.g.Inputs, v)
	} else {
		p.g.Params = append(p.g.Params, v)
	}
	p.endStatement(stmt)
}

// output = "output" name "=" value .
func (p *parser) output() {
	p.advance()
	name := p.expectKind(tokWord, "the output name")
	if p.outputs == nil {
		p.outputs = map[string]int{}
	}
	if line, dup := p.outputs[name.text]; dup {
		p.fail(name, "output %s is already defined at line %d", name.text, line)
	}
	p.outputs[name.text] = name.line
	p.expectPunct("=", "after the output name")
	v := p.lookupLabel(p.expectKind(tokValue, "the output value as %name"))
	p.g.SetOutput(name.text, v)
	p.endStatement("output")
}

// node = value {"," value} "=" op [operands] ["{" attrs "}"] ":" type {"," type} .
func (p *parser) node() {
	var results []token
	for {
		results = append(results, p.expectKind(tokValue, "a result name as %name"))
		if !p.isPunct(",") {
			break
		}
		p.advance()
	}
	p.expectPunct("=", "after the result names")
	opTok := p.expectKind(tokWord, "an op name")
	def, ok := LookupOp(opTok.text)
	if !ok {
		p.fail(opTok, "unknown op %q", opTok.text)
	}
	var inputs []*Value
	for p.tok.kind == tokValue {
		inputs = append(inputs, p.lookupLabel(p.tok))
		p.advance()
		if !p.isPunct(",") {
			break
		}
		p.advance()
		if p.tok.kind != tokValue {
			p.fail(p.tok, "expected an operand as %%name after ',', found %s", p.tok.describe())
		}
	}
	attrs := Attrs{}
	if p.isPunct("{") {
		attrs = p.attrs()
	}
	p.expectPunct(":", "before the result types of "+opTok.text)
	var types []Type
	var typeToks []token
	for {
		typeToks = append(typeToks, p.tok)
		types = append(types, p.typ())
		if !p.isPunct(",") {
			break
		}
		p.advance()
	}
	if len(types) != len(results) {
		p.fail(typeToks[0], "op %s: %d results are named but %d result types follow", opTok.text, len(results), len(types))
	}

	inferred, err := inferChecked(def, inputs, attrs)
	if err != nil {
		p.fail(opTok, "op %s: %v", opTok.text, err)
	}
	if len(inferred) != len(types) {
		p.fail(results[0], "op %s defines %d results, the line names %d", opTok.text, len(inferred), len(types))
	}
	for i, t := range inferred {
		if !t.Equal(types[i]) {
			p.fail(typeToks[i], "op %s: result %%%s is printed as %v, but type inference gives %v",
				opTok.text, results[i].text, types[i], t)
		}
	}

	n := &Node{Op: opTok.text, Inputs: inputs, Attrs: attrs}
	for i, t := range types {
		v := p.g.newValue(t, KindResult)
		v.Def = n
		p.defineLabel(results[i], v)
		n.Outputs = append(n.Outputs, v)
	}
	p.g.Nodes = append(p.g.Nodes, n)
	p.endStatement("node")
}

// inferChecked runs the op's type rule. The rules read attributes with
// type assertions (Attrs.Int and friends), so an attribute of the wrong
// kind in the text panics there. The panic becomes an error that lists the
// attribute kinds.
func inferChecked(def *OpDef, in []*Value, a Attrs) (types []Type, err error) {
	defer func() {
		if r := recover(); r != nil {
			types, err = nil, fmt.Errorf("type inference failed: %v (attributes: %s)", r, attrKinds(a))
		}
	}()
	return def.CheckAndInfer(in, a)
}

// attrKinds lists the attributes with their value kinds, for error messages.
func attrKinds(a Attrs) string {
	parts := make([]string, 0, len(a))
	for _, k := range a.Keys() {
		parts = append(parts, fmt.Sprintf("%s: %s", k, attrKind(a[k])))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func attrKind(v any) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "float"
	case string:
		return "string"
	case DType:
		return "dtype"
	case []int64:
		return "integer list"
	case []float64:
		return "float list"
	}
	return fmt.Sprintf("%T", v)
}

// attrs = "{" [name "=" value {"," name "=" value}] "}" .
func (p *parser) attrs() Attrs {
	p.advance()
	a := Attrs{}
	if p.isPunct("}") {
		p.advance()
		return a
	}
	for {
		key := p.expectKind(tokWord, "an attribute name")
		if _, dup := a[key.text]; dup {
			p.fail(key, "attribute %s is given twice", key.text)
		}
		p.expectPunct("=", "after attribute "+key.text)
		a[key.text] = p.attrValue(key.text)
		if p.isPunct("}") {
			p.advance()
			return a
		}
		p.expectPunct(",", "or '}' after the value of attribute "+key.text)
	}
}

// Scalar attribute literal kinds.
const (
	litInt = iota
	litFloat
	litDType
)

func (p *parser) attrValue(key string) any {
	t := p.tok
	switch {
	case t.kind == tokString:
		p.advance()
		return t.text
	case t.kind == tokWord:
		p.advance()
		_, v := p.scalarLiteral(t, key)
		return v
	case p.isPunct("["):
		return p.attrList(key)
	}
	p.fail(t, "expected a value for attribute %s (an integer, a float, a quoted string, a dtype or a list), found %s", key, t.describe())
	return nil
}

// scalarLiteral classifies a bare word in an attribute as a dtype name, a
// float (see looksFloat) or else an integer, and converts it.
func (p *parser) scalarLiteral(t token, key string) (int, any) {
	w := t.text
	if dt, err := ParseDType(w); err == nil {
		return litDType, dt
	}
	if looksFloat(w) {
		f, err := strconv.ParseFloat(w, 64)
		if err != nil {
			p.fail(t, "invalid float %q in attribute %s", w, key)
		}
		return litFloat, f
	}
	i, err := strconv.ParseInt(w, 10, 64)
	if err != nil {
		if isIntSyntax(w) {
			p.fail(t, "integer %s in attribute %s is out of the int64 range", w, key)
		}
		p.fail(t, "invalid value %q for attribute %s: expected an integer, a float (with '.', 'e', inf or nan), a quoted string, a dtype name or a list", w, key)
	}
	return litInt, i
}

// attrList parses "[...]" into []int64 or []float64. An empty list reads
// as a nil []int64, because the text cannot tell the two kinds apart.
func (p *parser) attrList(key string) any {
	p.advance()
	var ints []int64
	var floats []float64
	kind := -1
	for !p.isPunct("]") {
		t := p.expectKind(tokWord, "a number or ']' in the list of attribute "+key)
		k, v := p.scalarLiteral(t, key)
		if k == litDType {
			p.fail(t, "attribute %s: a list holds integers or floats, not the dtype %s", key, t.text)
		}
		if kind >= 0 && k != kind {
			p.fail(t, "attribute %s: list mixes integers and floats; write every float with '.' or 'e'", key)
		}
		kind = k
		if k == litInt {
			ints = append(ints, v.(int64))
		} else {
			floats = append(floats, v.(float64))
		}
		if !p.isPunct("]") {
			p.expectPunct(",", "or ']' in the list of attribute "+key)
		}
	}
	p.advance()
	if kind == litFloat {
		return floats
	}
	return ints
}

// typ = dtype "[" [dim {"," dim}] "]" ; dim = integer | symbol .
func (p *parser) typ() Type {
	t := p.expectKind(tokWord, "a type such as f32[2,seq]")
	dt, err := ParseDType(t.text)
	if err != nil {
		p.fail(t, "%v", err)
	}
	p.expectPunct("[", "after the dtype "+t.text)
	shape := Shape{}
	for !p.isPunct("]") {
		d := p.expectKind(tokWord, "a dimension (a size or a symbol name) or ']'")
		switch {
		case isIntSyntax(d.text):
			n, err := strconv.ParseInt(d.text, 10, 64)
			if err != nil {
				p.fail(d, "dimension %s is out of the int64 range", d.text)
			}
			shape = append(shape, D(n))
		case isSymbol(d.text):
			shape = append(shape, S(d.text))
		default:
			p.fail(d, "invalid dimension %q: expected a size or a symbol name (a letter or '_' followed by letters, digits, '_' or '.')", d.text)
		}
		if !p.isPunct("]") {
			p.expectPunct(",", "or ']' in the shape")
		}
	}
	p.advance()
	return T(dt, shape)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isIntSyntax reports whether s is an optionally signed decimal integer.
func isIntSyntax(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	return isDigits(s)
}

func isSymbol(s string) bool {
	if s == "" || !(s[0] == '_' || isLetter(s[0])) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '.' || isLetter(c) || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// looksFloat reports whether a number word is meant as a float: the
// printer writes every float with '.', an exponent, "inf" or "nan".
func looksFloat(w string) bool {
	l := strings.TrimLeft(strings.ToLower(w), "+-")
	switch l {
	case "inf", "infinity", "nan":
		return true
	}
	return l != "" && (l[0] == '.' || (l[0] >= '0' && l[0] <= '9')) && strings.ContainsAny(l, ".e")
}

// constant = "const" value ":" type "=" data .
func (p *parser) constant() {
	p.advance()
	name := p.expectKind(tokValue, "the const name as %name")
	p.expectPunct(":", "before the const type")
	typeTok := p.tok
	t := p.typ()
	for _, d := range t.Shape {
		if !d.IsStatic() || d.Size < 0 {
			p.fail(typeTok, "const type %v needs a static shape of sizes >= 0", t)
		}
	}
	p.expectPunct("=", "before the const data")
	v := p.g.newValue(t, KindConst)
	v.Const = p.constData(t)
	p.defineLabel(name, v)
	p.g.Consts = append(p.g.Consts, v)
	p.endStatement("const")
}

// constData = "dense" "<" ("sha256:" hex | "missing") ">" | "[" [elem {"," elem}] "]" .
func (p *parser) constData(t Type) *Tensor {
	sizes := t.Shape.Sizes()
	if p.isWord("dense") {
		p.advance()
		p.expectPunct("<", "after dense")
		w := p.expectKind(tokWord, "sha256:<hex digest> or missing inside dense<...>")
		if w.text == "missing" {
			p.expectPunct(">", "after dense<missing")
			return nil
		}
		if w.text != "sha256" {
			p.fail(w, "unknown digest %q in dense<...>: expected sha256:<hex> or missing", w.text)
		}
		p.expectPunct(":", "after sha256")
		hex := p.expectKind(tokWord, "the hexadecimal digest after sha256:")
		if !isHex(hex.text) {
			p.fail(hex, "digest %q is not hexadecimal", hex.text)
		}
		p.expectPunct(">", "after the digest")
		return &Tensor{DType: t.DType, Shape: sizes, Data: OpaqueData("sha256:" + hex.text)}
	}
	open := p.expectPunct("[", "or dense<...> for the const data")
	var words []token
	for !p.isPunct("]") {
		words = append(words, p.expectKind(tokWord, "a "+t.DType.String()+" value or ']' in the const data"))
		if !p.isPunct("]") {
			p.expectPunct(",", "or ']' in the const data")
		}
	}
	p.advance()
	if n, ok := elementCount(sizes); !ok || n != int64(len(words)) {
		p.fail(open, "const of type %v needs %s values, the list has %d", t, countText(sizes), len(words))
	}
	tensor := NewTensor(t.DType, sizes...)
	for i, w := range words {
		p.constElement(tensor, i, w)
	}
	return tensor
}

// elementCount multiplies the sizes, and ok is false on int64 overflow.
func elementCount(sizes []int64) (int64, bool) {
	n := int64(1)
	for _, s := range sizes {
		if s == 0 {
			return 0, true
		}
	}
	for _, s := range sizes {
		if n > math.MaxInt64/s {
			return 0, false
		}
		n *= s
	}
	return n, true
}

func countText(sizes []int64) string {
	if n, ok := elementCount(sizes); ok {
		return strconv.FormatInt(n, 10)
	}
	return "more than 2^63"
}

// constElement parses one value of inline const data into t.Data[i].
func (p *parser) constElement(t *Tensor, i int, w token) {
	bad := func(err error) {
		p.fail(w, "invalid %v value %q in const data: %v", t.DType, w.text, unwrapNumError(err))
	}
	switch d := t.Data.(type) {
	case []float32:
		f, err := strconv.ParseFloat(w.text, 32)
		if err != nil {
			bad(err)
		}
		d[i] = float32(f)
	case []float64:
		f, err := strconv.ParseFloat(w.text, 64)
		if err != nil {
			bad(err)
		}
		d[i] = f
	case []int64:
		n, err := strconv.ParseInt(w.text, 10, 64)
		if err != nil {
			bad(err)
		}
		d[i] = n
	case []int32:
		n, err := strconv.ParseInt(w.text, 10, 32)
		if err != nil {
			bad(err)
		}
		d[i] = int32(n)
	case []bool:
		b, err := strconv.ParseBool(w.text)
		if err != nil {
			bad(err)
		}
		d[i] = b
	case []uint16:
		// The printer writes f16 and bf16 as bit patterns (0x3c00). A
		// decimal float is also accepted and rounded to the nearest value.
		if strings.HasPrefix(w.text, "0x") {
			b, err := strconv.ParseUint(w.text[2:], 16, 16)
			if err != nil {
				bad(err)
			}
			d[i] = uint16(b)
			return
		}
		f, err := strconv.ParseFloat(w.text, 32)
		if err != nil {
			bad(err)
		}
		if t.DType == BF16 {
			d[i] = F32ToBF16(float32(f))
		} else {
			d[i] = F32ToF16(float32(f))
		}
	}
}

// unwrapNumError drops strconv's repetition of the function and input.
func unwrapNumError(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		return ne.Err
	}
	return err
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
			return false
		}
	}
	return s != ""
}

type tokenKind uint8

const (
	tokEOF     tokenKind = iota
	tokNewline           // a line end, which ends a statement
	tokWord              // a run of word bytes: keyword, op, number, dtype, symbol, name
	tokValue             // %name, with the name without '%' as text
	tokGlobal            // @name, with the name without '@' as text
	tokString            // a Go string literal, with the unquoted value as text
	tokPunct             // one of { } [ ] = , : < >
)

type token struct {
	kind      tokenKind
	text      string
	line, col int
}

// describe names the token for error messages.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of input"
	case tokNewline:
		return "end of line"
	case tokValue:
		return "%" + t.text
	case tokGlobal:
		return "@" + t.text
	case tokString:
		return "string " + strconv.Quote(t.text)
	case tokPunct:
		return "'" + t.text + "'"
	}
	return strconv.Quote(t.text)
}

// lexer splits the text into tokens. Spaces, tabs and carriage returns
// separate tokens, and "//" starts a comment that runs to the line end.
type lexer struct {
	src       string
	pos       int
	line      int
	lineStart int // offset of the first byte of the current line
}

// isWordByte reports the bytes of bare words and of %value and @graph
// names. '+' and '-' belong to words so that "1e+06" and "-inf" are one
// token.
func isWordByte(c byte) bool {
	return isLetter(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' || c == '+'
}

func (lx *lexer) errorAt(pos int, format string, args ...any) *ParseError {
	return &ParseError{Line: lx.line, Col: pos - lx.lineStart + 1, Msg: fmt.Sprintf(format, args...)}
}

func (lx *lexer) next() (token, error) {
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		if c == ' ' || c == '\t' || c == '\r' {
			lx.pos++
			continue
		}
		if strings.HasPrefix(lx.src[lx.pos:], "//") {
			for lx.pos < len(lx.src) && lx.src[lx.pos] != '\n' {
				lx.pos++
			}
			continue
		}
		break
	}
	start := lx.pos
	tok := token{line: lx.line, col: start - lx.lineStart + 1}
	if start >= len(lx.src) {
		tok.kind = tokEOF
		return tok, nil
	}
	c := lx.src[start]
	switch {
	case c == '\n':
		lx.pos++
		lx.line++
		lx.lineStart = lx.pos
		tok.kind = tokNewline
	case strings.IndexByte("{}[]=,:<>", c) >= 0:
		lx.pos++
		tok.kind, tok.text = tokPunct, string(c)
	case c == '"':
		s, err := lx.stringLit()
		if err != nil {
			return tok, err
		}
		tok.kind, tok.text = tokString, s
	case c == '%' || c == '@':
		lx.pos++
		tok.text = lx.word()
		if c == '%' {
			if tok.text == "" {
				return tok, lx.errorAt(start, "expected a value name after '%%' (letters, digits, '_', '.', '-', '+')")
			}
			tok.kind = tokValue
		} else {
			tok.kind = tokGlobal
		}
	case isWordByte(c):
		tok.kind, tok.text = tokWord, lx.word()
	default:
		r, _ := utf8.DecodeRuneInString(lx.src[start:])
		return tok, lx.errorAt(start, "unexpected character %q", r)
	}
	return tok, nil
}

func (lx *lexer) word() string {
	start := lx.pos
	for lx.pos < len(lx.src) && isWordByte(lx.src[lx.pos]) {
		lx.pos++
	}
	return lx.src[start:lx.pos]
}

// stringLit reads a double-quoted Go string literal on one line.
func (lx *lexer) stringLit() (string, error) {
	start := lx.pos
	i := start + 1
	for ; i < len(lx.src); i++ {
		switch lx.src[i] {
		case '\\':
			// The escaped byte cannot end the literal, but a line end
			// still ends the statement.
			if i+1 < len(lx.src) && lx.src[i+1] != '\n' {
				i++
			}
			continue
		case '\n':
			return "", lx.errorAt(start, "string literal is not terminated before the end of the line")
		case '"':
			s, err := strconv.Unquote(lx.src[start : i+1])
			if err != nil {
				return "", lx.errorAt(start, "invalid string literal %s: %v", lx.src[start:i+1], err)
			}
			lx.pos = i + 1
			return s, nil
		}
	}
	return "", lx.errorAt(start, "string literal is not terminated before the end of the input")
}
