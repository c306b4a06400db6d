package launch

import "syscall"

// sysProcAttr puts the server in its own process group, so Stop and Kill
// reach everything it forked, and asks Linux to kill it if the test process
// dies first, so a crashed test leaves no server holding ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
