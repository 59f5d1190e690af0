package passes

import "github.com/mmadac/mmadac/ir"

func init() {
	register(&Pass{Name: "dce", Required: true, Run: runDCE,
		Doc: "remove nodes, constants and weights that no output depends on"})
}

// runDCE keeps what the outputs reach, walking the node list backwards.
func runDCE(g *ir.Graph, c *Context) error {
	live := map[*ir.Value]bool{}
	for _, o := range g.Outputs {
		live[o.Value] = true
	}
	kept := make([]*ir.Node, 0, len(g.Nodes))
	removed := 0
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		used := false
		for _, o := range n.Outputs {
			if live[o] {
				used = true
				break
			}
		}
		if !used {
			removed++
			continue
		}
		for _, in := range n.Inputs {
			live[in] = true
		}
		kept = append(kept, n)
	}
	for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
		kept[i], kept[j] = kept[j], kept[i]
	}
	g.Nodes = kept
	g.Consts = filterLive(g.Consts, live, &removed)
	g.Params = filterLive(g.Params, live, &removed)
	c.count("dce.removed", removed)
	return nil
}

func filterLive(vs []*ir.Value, live map[*ir.Value]bool, removed *int) []*ir.Value {
	out := vs[:0]
	for _, v := range vs {
		if live[v] {
			out = append(out, v)
		} else {
			*removed++
		}
	}
	return out
}
