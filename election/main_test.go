package election_test

import (
	"os"
	"testing"

	"github.com/quorumsync/quorumsync/internal/childproc"
	"github.com/quorumsync/quorumsync/internal/redistest"
)

// TestMain runs a child's function when this binary was started as one (childproc), else starts
// one real redis-server for the Example functions, runs the tests, and checks for leaked
// goroutines after all tests.
func TestMain(m *testing.M) {
	childproc.Main()
	os.Exit(redistest.Main(m, &redisAddr))
}
