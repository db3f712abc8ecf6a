package redistest

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process get SIGKILL when the process that starts it dies, so that a
// test binary killed without running its cleanup (a timeout, a kill -9) leaves no server or child
// behind. (Linux delivers it when the starting OS thread exits; Go keeps its threads, except those
// of goroutines that lock one and exit.)
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
