//go:build !unix

package main

import "fmt"

// locked is not available off Unix: it relies on process groups and signals.
func (c *cli) locked(kind string, _ []string) int {
	fmt.Fprintf(c.stderr, "quorumsync %s: runs only on Unix-like systems\n", kind)
	return exitUsage
}
