//go:build quorumsync_mutation

package mutation

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

var active = os.Getenv(Env)

func init() {
	if active != "" && !slices.Contains(Names, active) {
		fmt.Fprintf(os.Stderr, "mutation: %s=%q is none of %v\n", Env, active, Names)
		os.Exit(2)
	}
}

// On reports whether the named bug is planted in this process.
func On(name string) bool { return active == name }

// Lua returns src with the named bug planted when it is on: each pair of replace is an old string
// and its new one, and each old string must occur in src, so that a script that changed cannot
// leave a mutation planting nothing.
func Lua(name, src string, replace ...string) string {
	if active != name {
		return src
	}
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(src, replace[i]) {
			panic(fmt.Sprintf("mutation %s: %q is not in the script", name, replace[i]))
		}
		src = strings.ReplaceAll(src, replace[i], replace[i+1])
	}
	return src
}
