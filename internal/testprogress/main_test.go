package main

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A passing package gets one line; a failing test gets its output; a package quiet for longer
// than the quiet period gets a line saying what it runs; the exit code says whether all passed.
func TestProgress(t *testing.T) {
	pr, pw := io.Pipe()
	var out bytes.Buffer
	code := make(chan int)
	go func() { code <- run(pr, &out, 60*time.Millisecond) }()
	write := func(lines ...string) {
		for _, l := range lines {
			_, _ = io.WriteString(pw, l+"\n")
		}
	}
	write(`{"Action":"run","Package":"p/slow","Test":"TestLong"}`)
	time.Sleep(200 * time.Millisecond)
	write(`{"Action":"pass","Package":"p/slow","Test":"TestLong","Elapsed":0.2}`,
		`{"Action":"pass","Package":"p/slow","Elapsed":0.2}`,
		`{"Action":"run","Package":"p/bad","Test":"TestX"}`,
		`{"Action":"output","Package":"p/bad","Test":"TestX","Output":"x_test.go:3: boom\n"}`,
		`{"Action":"fail","Package":"p/bad","Test":"TestX","Elapsed":0.1}`,
		`{"Action":"fail","Package":"p/bad","Elapsed":0.1}`)
	_ = pw.Close()
	assert.Equal(t, 1, <-code)
	got := out.String()
	assert.Contains(t, got, "... p/slow: 0 tests passed")
	assert.Contains(t, got, "running TestLong")
	assert.Contains(t, got, "ok   p/slow (0.2s, 1 tests)")
	assert.Contains(t, got, "--- FAIL p/bad TestX")
	assert.Contains(t, got, "boom")
	assert.Contains(t, got, "FAIL p/bad")

	out.Reset()
	assert.Equal(t, 0, run(strings.NewReader(`{"Action":"pass","Package":"p/ok","Elapsed":1}`+"\n"), &out, time.Minute))
	assert.Equal(t, 1, run(strings.NewReader(""), &out, time.Minute), "no result is not a pass")
}

// lockedBuffer is a bytes.Buffer for several writers (the report, and go test's stderr copied by
// os/exec), without the ReadFrom that os/exec would use to copy into it unlocked.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Run on its own, it runs go test per package and reports each.
func TestRunsGoTestPerPackage(t *testing.T) {
	var out lockedBuffer
	code := runTests([]string{"-p", "2", "-count=1", "-run", "TestNothingMatches", "github.com/quorumsync/quorumsync/fence", "github.com/quorumsync/quorumsync/internal/mutation"}, &out, time.Minute)
	assert.Equal(t, 0, code, out.String())
	assert.Contains(t, out.String(), "ok   github.com/quorumsync/quorumsync/fence")
	assert.Contains(t, out.String(), "github.com/quorumsync/quorumsync/internal/mutation")
	assert.Equal(t, 2, runTests([]string{"-p", "zero"}, &out, time.Minute))
}
