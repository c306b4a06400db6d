//go:build unix && !linux

package launch

import "syscall"

// sysProcAttr puts the server in its own process group, so Stop and Kill
// reach everything it forked.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
