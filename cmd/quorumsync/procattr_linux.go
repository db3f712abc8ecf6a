package main

import "syscall"

// procAttr puts the command in a process group of its own, and has the kernel kill it if
// quorumsync dies first (SIGKILL, a crash): it must not run on without the lock.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
