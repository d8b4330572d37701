package pgtest

import "syscall"

// sysProcAttr has the server killed if the test binary dies without
// stopping it, so that no cluster outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
