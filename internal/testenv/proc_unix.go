//go:build unix && !linux

package testenv

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts cmd in its own process group. Only Linux has a
// parent-death signal: elsewhere a killed test binary may leave servers
// running (Main still stops them on a normal exit).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup kills cmd's process group.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
