package lease_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// TestMain starts one real redis-server for the Example functions (which have no *testing.T) and
// checks for leaked goroutines after all tests.
func TestMain(m *testing.M) {
	addr, stop, err := redistest.Launch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lease tests:", err)
		os.Exit(1)
	}
	redisAddr = addr
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
