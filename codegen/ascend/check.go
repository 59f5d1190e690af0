package ascend

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
)

// Finding is one thing in a model that ATC would reject or misread.
type Finding struct {
	// Name is the node name, the tensor name for a tensor finding, or ""
	// for a finding about the whole model.
	Name string
	// OpType is the node's op type, or "initializer", "input", "output",
	// "value_info" or "model" for findings that are not about a node.
	OpType string
	// Domain is the node's domain as written ("" for ai.onnx).
	Domain string
	// Opset is the opset version the node's domain is imported at (0 when
	// not imported or not a node).
	Opset int64
	// Reason explains what ATC does with it and what to do instead.
	Reason string
}

// String formats the finding as one line: name, op type, opset, reason.
func (f Finding) String() string {
	name := f.Name
	if name == "" {
		name = "(model)"
	}
	op := f.OpType
	if f.Domain != "" && f.Domain != "ai.onnx" {
		op = f.Domain + "::" + op
	}
	opset := "-"
	if f.Opset > 0 {
		opset = strconv.FormatInt(f.Opset, 10)
	}
	return fmt.Sprintf("%s\t%s\topset %s\t%s", name, op, opset, f.Reason)
}

// MaxModelBytes is the largest .onnx file ATC's parser reads: it sets the
// protobuf read limit to INT_MAX.
const MaxModelBytes = 1<<31 - 1

// modelFunctionsField is ModelProto's field number for ONNX local
// functions, which onnxpb's schema leaves out so that they survive a read
// as unknown fields.
const modelFunctionsField = 25

// Element types ATC's CANN 8.0 parser cannot read. The older open-source
// parser maps BFLOAT16 to DT_UNDEFINED, and the float8 and 4-bit types
// postdate ONNX 1.12, the version CANN 8.0 documents.
var rejectedTypes = map[int32]string{
	int32(onnxpb.TensorProto_BFLOAT16): "bfloat16, which CANN 8.0's ONNX parser maps to an undefined type; store float16 or float32",
	17:                                 "float8e4m3fn, which CANN 8.0's ONNX parser does not read",
	18:                                 "float8e4m3fnuz, which CANN 8.0's ONNX parser does not read",
	19:                                 "float8e5m2, which CANN 8.0's ONNX parser does not read",
	20:                                 "float8e5m2fnuz, which CANN 8.0's ONNX parser does not read",
	21:                                 "uint4, which CANN 8.0's ONNX parser does not read",
	22:                                 "int4, which CANN 8.0's ONNX parser does not read",
}

// Check returns everything in m that ATC would reject or misread, in
// model order. It checks the opset imports and ONNX local functions, then
// every node whose domain, op type or opset ATC has no parser for (the
// subgraphs of If included). It also reports tensor types ATC cannot read
// and external data that it may resolve differently from ONNX Runtime. An
// empty result means the model is ATC-ready as far as these rules go.
func Check(m *onnxpb.ModelProto) []Finding {
	c := &checker{opsets: map[string]int64{}}
	c.checkImports(m)
	c.checkFunctions(m)
	if g := m.GetGraph(); g != nil {
		c.checkGraph(g)
	} else {
		c.add(Finding{OpType: "model", Reason: "the model has no graph (error E16004)"})
	}
	return c.findings
}

type checker struct {
	// opsets maps an imported domain ("" for ai.onnx) to its version.
	opsets   map[string]int64
	findings []Finding
}

func (c *checker) add(f Finding) { c.findings = append(c.findings, f) }

// checkImports requires one import of the default domain at an opset ATC
// registers operators for.
func (c *checker) checkImports(m *onnxpb.ModelProto) {
	defaults := 0
	for _, imp := range m.GetOpsetImport() {
		domain := imp.GetDomain()
		if domain == "ai.onnx" {
			domain = ""
		}
		if domain == "" {
			defaults++
		}
		c.opsets[domain] = imp.GetVersion()
	}
	v, ok := c.opsets[""]
	switch {
	case defaults > 1:
		c.add(Finding{OpType: "model", Reason: fmt.Sprintf("opset_import lists the default domain %d times (\"\" and \"ai.onnx\"); ATC allows one (error E16005)", defaults)})
	case !ok:
		c.add(Finding{OpType: "model", Reason: "opset_import has no entry for the default domain ai.onnx; ATC cannot resolve any standard op"})
	case v < MinOpset || v > MaxOpset:
		c.add(Finding{OpType: "model", Opset: v, Reason: fmt.Sprintf("ai.onnx opset %d is outside %d to %d, the versions ATC registers parsers for, so every node fails (error E16002); export with opset 17 or 18", v, MinOpset, MaxOpset)})
	}
}

// checkFunctions reports ONNX local functions: ATC's copy of onnx.proto has
// no ModelProto.functions field, so it drops them and every node that calls
// one fails.
func (c *checker) checkFunctions(m *onnxpb.ModelProto) {
	n := 0
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, size := protowire.ConsumeField(b)
		if size < 0 {
			break
		}
		if num == modelFunctionsField && typ == protowire.BytesType {
			n++
		}
		b = b[size:]
	}
	if n > 0 {
		c.add(Finding{OpType: "model", Reason: fmt.Sprintf("the model defines %d ONNX local function(s), which ATC's parser drops; inline them", n)})
	}
}

func (c *checker) checkGraph(g *onnxpb.GraphProto) {
	for _, t := range g.GetInitializer() {
		c.checkTensorType(t.GetName(), "initializer", t.GetDataType())
		c.checkExternal(t)
	}
	for _, list := range []struct {
		kind   string
		values []*onnxpb.ValueInfoProto
	}{{"input", g.GetInput()}, {"output", g.GetOutput()}, {"value_info", g.GetValueInfo()}} {
		for _, v := range list.values {
			if tt := v.GetType().GetTensorType(); tt != nil {
				c.checkTensorType(v.GetName(), list.kind, tt.GetElemType())
			}
		}
	}
	for i, n := range g.GetNode() {
		c.checkNode(i, n)
	}
}

func (c *checker) checkTensorType(name, kind string, dt int32) {
	if why, bad := rejectedTypes[dt]; bad {
		c.add(Finding{Name: name, OpType: kind, Reason: "element type " + why})
	}
}

// checkExternal reports external data that ATC may read differently from
// ONNX Runtime: a location outside the model folder, or an offset, which
// older ATC parsers multiply by 4096.
func (c *checker) checkExternal(t *onnxpb.TensorProto) {
	ref, ok, err := onnxpb.External(t)
	if !ok {
		return
	}
	f := Finding{Name: t.GetName(), OpType: "initializer"}
	switch {
	case err != nil:
		f.Reason = err.Error()
	case filepath.IsAbs(ref.Location) || !filepath.IsLocal(filepath.FromSlash(ref.Location)):
		f.Reason = fmt.Sprintf("external data location %q is not a path inside the model folder; ATC resolves it relative to the .onnx file", ref.Location)
	case ref.Offset != 0:
		f.Reason = fmt.Sprintf("external data at offset %d of %s: older ATC parsers multiply the offset by 4096 (CANN 8.0 unconfirmed); write one file per tensor without an offset", ref.Offset, ref.Location)
	default:
		return
	}
	c.add(f)
}

func (c *checker) checkNode(i int, n *onnxpb.NodeProto) {
	name := n.GetName()
	if name == "" {
		name = fmt.Sprintf("node %d", i)
		if outs := n.GetOutput(); len(outs) > 0 {
			name += " (output " + outs[0] + ")"
		}
	}
	domain := n.GetDomain()
	key := domain
	if key == "ai.onnx" {
		key = ""
	}
	opset, imported := c.opsets[key]
	f := Finding{Name: name, OpType: n.GetOpType(), Domain: domain, Opset: opset}
	switch {
	case key != "":
		f.Reason = fmt.Sprintf("custom domain %q: CANN 8.0's ONNX operator list has standard ai.onnx operators only; emit standard ops", domain)
		if !imported {
			f.Reason += " (the domain is not in opset_import either)"
		}
		c.add(f)
	case !imported:
		// checkImports reported the missing import once for the model.
	default:
		if ok, why := Supported(n.GetOpType(), opset); !ok {
			f.Reason = why
			c.add(f)
		}
	}
	for _, a := range n.GetAttribute() {
		if t := a.GetT(); t != nil {
			if why, bad := rejectedTypes[t.GetDataType()]; bad {
				c.add(Finding{Name: name, OpType: n.GetOpType(), Domain: domain, Opset: opset,
					Reason: "attribute " + a.GetName() + " holds a tensor of element type " + why})
			}
		}
		if n.GetOpType() == "Cast" && a.GetName() == "to" {
			if why, bad := rejectedTypes[int32(a.GetI())]; bad {
				c.add(Finding{Name: name, OpType: "Cast", Domain: domain, Opset: opset, Reason: "casts to " + why})
			}
		}
		if g := a.GetG(); g != nil {
			c.checkGraph(g)
		}
		for _, g := range a.GetGraphs() {
			c.checkGraph(g)
		}
	}
}

// CheckFile reads an ONNX model and checks it with Check. It also reports
// a file over ATC's 2 GiB protobuf limit and external data files that do
// not exist next to the model. The error is for a file that cannot be read
// or parsed.
func CheckFile(path string) ([]Finding, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxModelBytes {
		return []Finding{{OpType: "model", Reason: fmt.Sprintf("the file has %d bytes, over the 2 GiB protobuf limit of ATC's parser; store the weights as external data", st.Size())}}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("%s is not an ONNX model: %w", path, err)
	}
	findings := Check(m)
	dir := filepath.Dir(path)
	for _, t := range m.GetGraph().GetInitializer() {
		ref, ok, err := onnxpb.External(t)
		if !ok || err != nil || !filepath.IsLocal(filepath.FromSlash(ref.Location)) {
			continue
		}
		file := filepath.Join(dir, filepath.FromSlash(ref.Location))
		fst, err := os.Stat(file)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			findings = append(findings, Finding{Name: t.GetName(), OpType: "initializer",
				Reason: fmt.Sprintf("external data file %s does not exist next to the model", ref.Location)})
		case err != nil:
			findings = append(findings, Finding{Name: t.GetName(), OpType: "initializer", Reason: err.Error()})
		case ref.Length >= 0 && fst.Size() < ref.Offset+ref.Length:
			findings = append(findings, Finding{Name: t.GetName(), OpType: "initializer",
				Reason: fmt.Sprintf("external data file %s has %d bytes, the tensor needs %d from offset %d", ref.Location, fst.Size(), ref.Length, ref.Offset)})
		}
	}
	return findings, nil
}

// WriteReport prints the findings one per line (name, op type, opset and
// reason, tab-separated) after a summary line.
func WriteReport(w io.Writer, model string, findings []Finding) error {
	var b strings.Builder
	if len(findings) == 0 {
		fmt.Fprintf(&b, "%s: ATC-ready (no node that ATC would reject)\n", model)
	} else {
		fmt.Fprintf(&b, "%s: %d finding(s) that ATC would reject or misread\n", model, len(findings))
		b.WriteString("name\top type\topset\treason\n")
		for _, f := range findings {
			b.WriteString(f.String() + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
