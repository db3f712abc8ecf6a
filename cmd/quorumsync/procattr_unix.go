//go:build unix && !linux

package main

import "syscall"

// procAttr puts the command in a process group of its own. (Only Linux can have the kernel kill
// it when quorumsync dies first.)
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
