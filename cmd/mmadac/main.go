// Command mmadac compiles MMaDA checkpoints to ONNX and runs the diffusion
// samplers over them; `mmadac help` lists the commands.
package main

import (
	"os"

	"github.com/mmadac/mmadac/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
