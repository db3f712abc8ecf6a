//go:build !linux

package redistest

import "os/exec"

// DieWithParent does nothing off Linux, which has no parent-death signal: a test binary killed
// without running its cleanup may leave its servers and children running there.
func DieWithParent(cmd *exec.Cmd) {}
