//go:build unix

package atc

import (
	"os/exec"
	"syscall"
)

// killProcessGroupOnCancel starts the command in its own process group and
// kills the whole group when the context ends. atc is a shell script that
// runs atc.bin, and killing only the script would leave atc.bin running
// with the output pipes open.
func killProcessGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
