//go:build !quorumsync_mutation

package mutation

// On reports whether the named bug is planted: never, in this build.
func On(string) bool { return false }

// Lua returns src: no bug is planted in this build.
func Lua(_ string, src string, _ ...string) string { return src }
