//go:build !unix

package testenv

import "os/exec"

// setProcAttr does nothing: process groups are a unix notion.
func setProcAttr(*exec.Cmd) {}

// killGroup kills cmd's process only.
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
