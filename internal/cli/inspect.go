package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/mmadac/mmadac/codegen/bundle"
	"github.com/mmadac/mmadac/codegen/om"
	"github.com/mmadac/mmadac/codegen/onnx/onnxpb"
)

// newInspectCmd builds `mmadac inspect FILE`.
func newInspectCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "inspect FILE|BUNDLE",
		Short: "Describe an OM file, an ONNX model or a bundle folder",
		Long: `Describe an OM file, an ONNX model or a bundle folder.

An OM file (.om, from Huawei's ATC) prints its header and partition tables.
An ONNX model (.onnx) prints its opsets, inputs, outputs, operator counts and
where its weights are. A bundle folder prints its manifest: graphs with
shapes or gears, schedules, build options and weight files with SHA-256.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspect(cmd.OutOrStdout(), args[0], all)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list every weight file of a bundle, not only the first five")
	return cmd
}

func inspect(w io.Writer, path string, all bool) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		if !bundle.IsBundle(path) {
			return fmt.Errorf("%s is a folder without a bundle manifest (%s); pass a bundle written by mmadac build, an .om or an .onnx file", path, bundle.ManifestFile)
		}
		m, err := bundle.Read(path)
		if err != nil {
			return err
		}
		return bundle.Format(w, m, all)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".om":
		info, err := om.Inspect(path)
		if err != nil {
			return err
		}
		return info.Format(w)
	case ".onnx":
		return inspectONNX(w, path)
	}
	return fmt.Errorf("cannot inspect %s: give an .om file, an .onnx file or a bundle folder", path)
}

// inspectONNX prints a summary of an ONNX model without loading external
// weight data.
func inspectONNX(w io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("%s is not an ONNX model: %w", path, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ONNX model %s (%d bytes)\n", path, len(data))
	fmt.Fprintf(&b, "  ir_version: %d  producer: %s %s\n", m.GetIrVersion(), m.GetProducerName(), m.GetProducerVersion())
	for _, imp := range m.GetOpsetImport() {
		domain := imp.GetDomain()
		if domain == "" {
			domain = "ai.onnx"
		}
		fmt.Fprintf(&b, "  opset %s %d\n", domain, imp.GetVersion())
	}
	g := m.GetGraph()
	for _, v := range g.GetInput() {
		fmt.Fprintf(&b, "  input  %s\n", describeValue(v))
	}
	for _, v := range g.GetOutput() {
		fmt.Fprintf(&b, "  output %s\n", describeValue(v))
	}
	counts := map[string]int{}
	for _, n := range g.GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" {
			op = d + "::" + op
		}
		counts[op]++
	}
	ops := make([]string, 0, len(counts))
	for op := range counts {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fmt.Fprintf(&b, "  %d nodes:", len(g.GetNode()))
	for _, op := range ops {
		fmt.Fprintf(&b, " %s=%d", op, counts[op])
	}
	b.WriteString("\n")
	external, inline := 0, 0
	files := map[string]bool{}
	for _, t := range g.GetInitializer() {
		ref, ok, err := onnxpb.External(t)
		switch {
		case err != nil:
			return err
		case ok:
			external++
			files[ref.Location] = true
		default:
			inline++
		}
	}
	fmt.Fprintf(&b, "  initializers: %d inline, %d external in %d file(s)\n", inline, external, len(files))
	for _, p := range m.GetMetadataProps() {
		fmt.Fprintf(&b, "  meta %s = %s\n", p.GetKey(), p.GetValue())
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func describeValue(v *onnxpb.ValueInfoProto) string {
	tt := v.GetType().GetTensorType()
	dims := make([]string, 0, len(tt.GetShape().GetDim()))
	for _, d := range tt.GetShape().GetDim() {
		if p := d.GetDimParam(); p != "" {
			dims = append(dims, p)
		} else {
			dims = append(dims, fmt.Sprint(d.GetDimValue()))
		}
	}
	return fmt.Sprintf("%s %s[%s]", v.GetName(), onnxpb.TensorProto_DataType(tt.GetElemType()), strings.Join(dims, ","))
}
