package lease_test

import (
	"os"
	"testing"

	"github.com/quorumsync/quorumsync/internal/redistest"
)

// redisAddr is the server the examples use (TestMain starts one).
var redisAddr = "localhost:6379"

// TestMain starts one real redis-server for the Example functions and checks for leaked
// goroutines after all tests.
func TestMain(m *testing.M) { os.Exit(redistest.Main(m, &redisAddr)) }
