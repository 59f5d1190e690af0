//go:build !unix

package atc

import "os/exec"

// killProcessGroupOnCancel keeps exec's default of killing the process
// only. CANN ships ATC for Linux alone, so other systems only run stand-ins.
func killProcessGroupOnCancel(cmd *exec.Cmd) {}
