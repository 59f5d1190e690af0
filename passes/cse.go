package passes

import (
	"fmt"
	"strings"

	"github.com/mmadac/mmadac/ir"
)

func init() {
	register(&Pass{Name: "cse", Run: runCSE,
		Doc: "merge identical small constants and nodes with the same op, attributes and operands"})
}

// maxMergedConst bounds the constants cse compares by value, in elements.
const maxMergedConst = 4096

func runCSE(g *ir.Graph, c *Context) error {
	// Constants first: equal dtype, shape and bytes become one value.
	seenConst := map[string]*ir.Value{}
	replace := map[*ir.Value]*ir.Value{}
	for _, v := range g.Consts {
		if v.Const == nil || v.Const.Len() > maxMergedConst {
			continue
		}
		if _, opaque := v.Const.Data.(ir.OpaqueData); opaque {
			continue
		}
		key := v.Type.String() + ":" + string(ir.TensorBytes(v.Const))
		if first, ok := seenConst[key]; ok {
			replace[v] = first
		} else {
			seenConst[key] = v
		}
	}
	seen := map[string]*ir.Node{}
	merged := 0
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if r, ok := replace[in]; ok {
				n.Inputs[i] = r
			}
		}
		key := nodeKey(n)
		if first, ok := seen[key]; ok {
			for i, o := range n.Outputs {
				replace[o] = first.Outputs[i]
			}
			merged++
			continue
		}
		seen[key] = n
	}
	for i := range g.Outputs {
		if r, ok := replace[g.Outputs[i].Value]; ok {
			g.Outputs[i].Value = r
		}
	}
	c.count("cse.merged", merged+len(replace)-merged)
	return runDCE(g, c)
}

func nodeKey(n *ir.Node) string {
	var sb strings.Builder
	sb.WriteString(n.Op)
	for _, in := range n.Inputs {
		fmt.Fprintf(&sb, " %p", in)
	}
	for _, k := range n.Attrs.Keys() {
		fmt.Fprintf(&sb, " %s=%v", k, n.Attrs[k])
	}
	return sb.String()
}
