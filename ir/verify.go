package ir

import (
	"errors"
	"fmt"
)

// Verify checks the graph's invariants and returns every violation found,
// joined: each node's operands are defined before it (so the order is
// topological and acyclic), operand counts and result types agree with the
// op table's rules, value IDs and input and parameter names are unique, and
// every output is defined.
func Verify(g *Graph) error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	defined := map[*Value]bool{}
	ids := map[int]bool{}
	names := map[string]bool{}
	declare := func(v *Value, what string, kind ValueKind) {
		if v.Kind != kind {
			fail("%s %s has kind %d", what, v.Ref(), v.Kind)
		}
		if ids[v.ID] {
			fail("value id %d is used twice", v.ID)
		}
		ids[v.ID] = true
		if v.Name != "" && kind != KindResult {
			if names[v.Name] {
				fail("name %q is declared twice", v.Name)
			}
			names[v.Name] = true
		}
		if v.Type.DType == InvalidDType {
			fail("%s %s has no dtype", what, v.Ref())
		}
		defined[v] = true
	}
	for _, v := range g.Inputs {
		declare(v, "input", KindInput)
	}
	for _, v := range g.Params {
		declare(v, "param", KindParam)
	}
	for _, v := range g.Consts {
		declare(v, "const", KindConst)
		if v.Const != nil {
			if _, opaque := v.Const.Data.(OpaqueData); !opaque && v.Const.DType != v.Type.DType {
				fail("const %s holds %v data but is typed %v", v.Ref(), v.Const.DType, v.Type)
			}
		}
	}
	for i, n := range g.Nodes {
		def, ok := LookupOp(n.Op)
		if !ok {
			fail("node %d: unknown op %q", i, n.Op)
			continue
		}
		undefined := false
		for j, in := range n.Inputs {
			if in == nil || !defined[in] {
				fail("node %d (%s): operand %d is not defined before use", i, n.Op, j)
				undefined = true
			}
		}
		if !undefined {
			types, err := def.CheckAndInfer(n.Inputs, n.Attrs)
			switch {
			case err != nil:
				fail("node %d (%s): %v", i, n.Op, err)
			case len(types) != len(n.Outputs):
				fail("node %d (%s): %d results, the op defines %d", i, n.Op, len(n.Outputs), len(types))
			default:
				for j, t := range types {
					if !t.Equal(n.Outputs[j].Type) {
						fail("node %d (%s): result %d is typed %v, inference gives %v", i, n.Op, j, n.Outputs[j].Type, t)
					}
				}
			}
		}
		for _, o := range n.Outputs {
			if o.Def != n {
				fail("node %d (%s): result %s points to another node", i, n.Op, o.Ref())
			}
			declare(o, "result", KindResult)
		}
	}
	if len(g.Outputs) == 0 {
		fail("graph %s has no outputs", g.Name)
	}
	outNames := map[string]bool{}
	for _, o := range g.Outputs {
		if !defined[o.Value] {
			fail("output %s is not defined", o.Name)
		}
		if outNames[o.Name] {
			fail("output name %s is used twice", o.Name)
		}
		outNames[o.Name] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("graph %s is invalid: %w", g.Name, errors.Join(errs...))
	}
	return nil
}
