// Command testprogress runs `go test -json` and writes what a person watching a long run needs: a
// line per package as it ends, the full output of every test that fails, and, when a package has
// run for 30 seconds without news, a line saying what it is running. It exits 1 if a test or a
// package failed (or no result came), else 0.
//
//	testprogress [-p N] [go test flags] [packages]    runs go test itself
//	go test -json ./... | testprogress                reads go test's events on stdin
//
// Run on its own, it runs one `go test -json` per package, N at a time (default: the number of
// CPUs, as go test's -p): go test holds back the events of all packages but one when it tests
// several at once, so piping a run of many packages gives news only as each package ends.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
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

func main() {
	if len(os.Args) == 1 {
		os.Exit(run(os.Stdin, os.Stdout, 30*time.Second))
	}
	os.Exit(runTests(os.Args[1:], os.Stdout, 30*time.Second))
}

// runTests runs go test -json on each package args name, parallel at a time, and reports as run
// does.
func runTests(args []string, out io.Writer, quiet time.Duration) int {
	parallel := runtime.NumCPU()
	if len(args) >= 2 && args[0] == "-p" {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			fmt.Fprintln(out, "testprogress: -p wants a positive number")
			return 2
		}
		parallel, args = n, args[2:]
	}
	var flags, patterns []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
		} else if len(flags) > 0 && needsValue(flags[len(flags)-1]) {
			flags = append(flags, a)
		} else {
			patterns = append(patterns, a)
		}
	}
	list, err := exec.Command("go", append([]string{"list", "-f", `{{.ImportPath}} {{.Dir}} {{join .TestGoFiles ","}},{{join .XTestGoFiles ","}}`}, patterns...)...).Output()
	if err != nil {
		fmt.Fprintf(out, "testprogress: go list: %v\n", err)
		return 1
	}
	packages := longestFirst(string(list))
	pr, pw := io.Pipe()
	code := make(chan int)
	go func() { code <- run(pr, out, quiet) }()
	var wmu sync.Mutex // one event line at a time into the pipe
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, p := range packages {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cmd := exec.Command("go", append(append([]string{"test", "-json"}, flags...), p)...)
			cmd.Stderr = out
			stdout, err := cmd.StdoutPipe()
			if err == nil {
				err = cmd.Start()
			}
			if err != nil {
				wmu.Lock()
				fmt.Fprintf(pw, `{"Action":"fail","Package":%q,"Output":%q}`+"\n", p, err.Error())
				wmu.Unlock()
				return
			}
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
			for sc.Scan() {
				wmu.Lock()
				_, _ = pw.Write(append(sc.Bytes(), '\n'))
				wmu.Unlock()
			}
			_ = cmd.Wait() // the events say how it went
		}()
	}
	wg.Wait()
	_ = pw.Close()
	return <-code
}

// longestFirst reads go list's lines ("path dir testfiles,...") and returns the packages with the
// most test code first: with a few run at a time, the run ends soonest when the longest packages
// start first, and the size of a package's tests is what can be known of their length beforehand.
func longestFirst(list string) []string {
	type pkg struct {
		path string
		size int64
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p := pkg{path: f[0]}
		if len(f) == 3 {
			for _, name := range strings.Split(f[2], ",") {
				if fi, err := os.Stat(filepath.Join(f[1], name)); err == nil && name != "" {
					p.size += fi.Size()
				}
			}
		}
		pkgs = append(pkgs, p)
	}
	sort.SliceStable(pkgs, func(i, j int) bool { return pkgs[i].size > pkgs[j].size })
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = p.path
	}
	return out
}

// needsValue reports whether a go test flag takes its value as the next argument.
func needsValue(flag string) bool {
	if strings.Contains(flag, "=") {
		return false
	}
	switch strings.TrimLeft(flag, "-") {
	case "timeout", "run", "skip", "count", "p", "parallel", "tags", "bench", "benchtime", "cpu", "coverprofile", "covermode", "shuffle", "ldflags", "gcflags":
		return true
	}
	return false
}

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
