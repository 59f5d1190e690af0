package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/codegen/ascend"
)

// newCheckAscendCmd builds `mmadac check-ascend MODEL.onnx`.
func newCheckAscendCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-ascend MODEL.onnx",
		Short: "Report every node of an ONNX model that Huawei's ATC would reject",
		Long: `Report every node of an ONNX model that Huawei's ATC (CANN 8.0) would reject
or misread: operators missing from CANN 8.0's ONNX operator list or outside
the opsets it registers (8 to 18), custom domains, ONNX local functions,
bfloat16 and other unreadable element types, Einsum, and external data that
is outside the model folder, at an offset, or missing.

Each finding is one tab-separated line: name, op type, opset, reason. The
exit status is 0 when there is none and 1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			findings, err := ascend.CheckFile(args[0])
			if err != nil {
				return err
			}
			if err := ascend.WriteReport(cmd.OutOrStdout(), args[0], findings); err != nil {
				return err
			}
			if len(findings) > 0 {
				return fmt.Errorf("%s: %d finding(s); ATC would reject or misread the model", args[0], len(findings))
			}
			return nil
		},
	}
}
