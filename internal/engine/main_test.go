package engine_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines after all tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
