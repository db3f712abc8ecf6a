// Command testprogress reads `go test -json` on stdin and writes what a person watching a long
// run needs: a line per package as it ends, the full output of every test that fails, and, when a
// package has run for 30 seconds without news, a line saying what it is running. It exits 1 if a
// test or a package failed (or the input had no result), else 0.
//
//	go test -json ./... | go run ./internal/testprogress
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// event is one line of test2json's output.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// pkg is what is known of a package while it runs.
type pkg struct {
	started  time.Time
	lastNews time.Time
	passed   int
	running  map[string]time.Time // top-level tests under way
	output   map[string][]string  // per test (and "" for the package), until it ends
}

func main() { os.Exit(run(os.Stdin, os.Stdout, 30*time.Second)) }

func run(in io.Reader, out io.Writer, quiet time.Duration) int {
	var mu sync.Mutex
	pkgs := map[string]*pkg{}
	failed, results := false, 0
	done := make(chan struct{})
	go func() { // the heartbeat
		t := time.NewTicker(quiet / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				mu.Lock()
				for name, p := range pkgs {
					if now.Sub(p.lastNews) < quiet {
						continue
					}
					p.lastNews = now
					var tests []string
					for test, since := range p.running {
						tests = append(tests, fmt.Sprintf("%s (%v)", test, now.Sub(since).Round(time.Second)))
					}
					sort.Strings(tests)
					fmt.Fprintf(out, "   ... %s: %d tests passed in %v, running %s\n", short(name), p.passed,
						now.Sub(p.started).Round(time.Second), strings.Join(tests, ", "))
				}
				mu.Unlock()
			}
		}
	}()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // not test2json: a build error, say
			continue
		}
		mu.Lock()
		p := pkgs[e.Package]
		if p == nil {
			p = &pkg{started: time.Now(), lastNews: time.Now(), running: map[string]time.Time{}, output: map[string][]string{}}
			pkgs[e.Package] = p
		}
		top := e.Test != "" && !strings.Contains(e.Test, "/")
		switch e.Action {
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "run":
			if top {
				p.running[e.Test] = time.Now()
			}
		case "output":
			key := e.Test
			if i := strings.IndexByte(key, '/'); i >= 0 {
				key = key[:i]
			}
			p.output[key] = append(p.output[key], e.Output)
		case "pass", "skip", "fail":
			if e.Test == "" { // the package
				results++
				verdict := "ok  "
				if e.Action == "fail" {
					failed, verdict = true, "FAIL"
					// The package's own output, and that of the tests it was running when it
					// failed (a timeout's panic, say).
					var keys []string
					for k := range p.output {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					for _, k := range keys {
						for _, line := range p.output[k] {
							fmt.Fprint(out, "    "+line)
						}
					}
				}
				fmt.Fprintf(out, "%s %s (%.1fs, %d tests)\n", verdict, e.Package, e.Elapsed, p.passed)
				delete(pkgs, e.Package)
				break
			}
			if !top {
				break
			}
			delete(p.running, e.Test)
			p.lastNews = time.Now()
			if e.Action == "fail" {
				failed = true
				fmt.Fprintf(out, "--- FAIL %s %s (%.1fs)\n", short(e.Package), e.Test, e.Elapsed)
				for _, line := range p.output[e.Test] {
					fmt.Fprint(out, "    "+line)
				}
			} else if e.Action == "pass" {
				p.passed++
			}
			delete(p.output, e.Test)
		}
		mu.Unlock()
	}
	close(done)
	if failed || results == 0 {
		return 1
	}
	return 0
}

// short drops the module path from a package's import path.
func short(p string) string {
	return strings.TrimPrefix(p, "github.com/quorumsync/quorumsync/")
}
