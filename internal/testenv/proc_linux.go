package testenv

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts cmd in its own process group, killed with SIGKILL when
// the thread that forks it dies (Linux's parent-death signal).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills cmd's process group.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
