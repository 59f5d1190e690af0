package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mmadac/mmadac/frontend/tokenizer"
)

func newTokenizeCmd() *cobra.Command {
	var path, input string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tokenize --tokenizer FILE --input TEXTS.json",
		Short: "Encode a JSON list of strings with a tokenizer.json and decode them back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" || input == "" {
				return usagef("tokenize needs --tokenizer FILE and --input TEXTS.json")
			}
			tok, err := tokenizer.Load(path)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(input)
			if err != nil {
				return fmt.Errorf("cannot read input: %w", err)
			}
			var texts []string
			if err := json.Unmarshal(data, &texts); err != nil {
				return fmt.Errorf("input %s must be a JSON list of strings: %w", input, err)
			}
			type result struct {
				IDs     []int64 `json:"ids"`
				Decoded string  `json:"decoded"`
			}
			results := make([]result, len(texts))
			for i, t := range texts {
				ids := tok.Encode(t)
				if ids == nil {
					ids = []int64{}
				}
				results[i] = result{IDs: ids, Decoded: tok.Decode(ids, false)}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, results)
			}
			for _, r := range results {
				fmt.Fprintf(out, "%v\t%q\n", r.IDs, r.Decoded)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "tokenizer", "", "tokenizer.json, or a folder holding one")
	cmd.Flags().StringVar(&input, "input", "", "JSON file with a list of strings")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print [{"ids": [...], "decoded": "..."}, ...]`)
	return cmd
}
