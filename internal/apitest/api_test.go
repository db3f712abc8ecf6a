// Package apitest holds the test that keeps the public surface of the library a decision: it lists
// what each package a user imports exports, and fails when an export is added or removed without
// the list here being updated (and the closing note saying why).
package apitest

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The budgets: what one sitting can learn. lease's was 40 for what an application calls to hold;
// the operator's calls (Dial, Inspect, List, Break, Health and the three types they return) take
// it to 48.
// mutex holds two primitives: the Mutex (17 names) and the Multi with its lease (20), hence its
// own budget.
const (
	leaseBudget     = 50
	primitiveBudget = 30
	mutexBudget     = 40
)

// surface is, per package, every exported identifier: types, funcs, vars and consts by name,
// methods as Type.Method (those of an alias's type count too). Fields are not listed.
var surface = map[string][]string{
	"lease": {
		"ErrClosed", "ErrInvalidArgument", "ErrLost", "ErrMisconfigured", "ErrNodeTimeout",
		"ErrNotAcquired", "ErrNotHeld", "ErrNotReleased", "ErrReleased", "ErrUnavailable",
		"Dial", "Holder", "Holding", "NodeHealth", "State",
		"Lease", "Lease.Done", "Lease.Err", "Lease.Fence", "Lease.Fences", "Lease.Holder", "Lease.Name",
		"Lease.Release", "Lease.Units", "Lease.Until", "Lease.Valid",
		"NewQuorum",
		"NodeError", "NodeError.Error", "NodeError.Unwrap",
		"Option",
		"Quorum", "Quorum.Break", "Quorum.Close", "Quorum.Health", "Quorum.Inspect", "Quorum.List",
		"WithErrorHandler", "WithHandoff", "WithKeyPrefix", "WithLogger", "WithMaxHold",
		"WithMeterProvider", "WithNameMetrics", "WithNodeTimeout", "WithReplicaAck", "WithRestartGuard", "WithTTL",
		"WithTracerProvider",
	},
	"mutex": {
		"ErrNotLocked",
		"Mutex", "Mutex.Do", "Mutex.Lock", "Mutex.Locker", "Mutex.Name", "Mutex.Obtain", "Mutex.TryDo",
		"Mutex.TryLock", "Mutex.TryObtain", "Mutex.Unlock",
		"New", "Option", "WithErrorHandler", "WithFencing", "WithLabel", "WithTTL",
		"MaxNames", "NewMulti",
		"Multi", "Multi.Do", "Multi.Lock", "Multi.Locker", "Multi.Names", "Multi.Obtain", "Multi.TryDo",
		"Multi.TryLock", "Multi.TryObtain", "Multi.Unlock",
		"MultiLease", "MultiLease.Done", "MultiLease.Err", "MultiLease.Fences", "MultiLease.Leases",
		"MultiLease.Release", "MultiLease.Until", "MultiLease.Valid",
	},
	"election": {
		"ErrCampaigning", "ErrNoLeader", "ErrNotLeader",
		"Election", "Election.Campaign", "Election.Done", "Election.Err", "Election.Lease",
		"Election.Leader", "Election.Name", "Election.Observe", "Election.Resign", "Election.Term",
		"Leadership", "New", "Option", "WithErrorHandler", "WithTTL",
	},
	"rwmutex": {
		"ErrNotLocked", "ErrNotRLocked", "ErrUpgrade",
		"New", "Option",
		"RWMutex", "RWMutex.Do", "RWMutex.Lock", "RWMutex.Locker", "RWMutex.Name", "RWMutex.Obtain",
		"RWMutex.ObtainRead", "RWMutex.RDo", "RWMutex.RLock", "RWMutex.RLocker", "RWMutex.RUnlock",
		"RWMutex.TryDo", "RWMutex.TryLock", "RWMutex.TryObtain", "RWMutex.TryObtainRead",
		"RWMutex.TryRDo", "RWMutex.TryRLock", "RWMutex.Unlock",
		"WithErrorHandler", "WithFencing", "WithLabel", "WithTTL",
	},
	"watchdog": {"ErrExpired", "ErrMaxHold"},
	"tracing": {
		"AttemptsKey", "ErrorKey", "LockNameKey", "NodeAddressKey", "NodeIndexKey", "NodeTimeoutKey",
		"NodesKey", "OperationKey", "Outcome", "OutcomeAcquired", "OutcomeCancelled", "OutcomeError",
		"OutcomeKey", "OutcomeNotAcquired", "PermitsKey", "PrimitiveKey", "QuorumKey", "RetryReasonKey",
		"RetryWaitKey", "ScopeName", "ValidityKey", "Version", "WaitKey", "WakeUpKey",
	},
	"fence": {"ErrInvalidArgument", "ErrStale", "NewScript", "Script", "Script.Run", "Set"},
	"quorumsynctest": {
		"New", "NewServers", "Servers", "Servers.Close", "Servers.Embedded", "Servers.String", "Servers.URLs",
		"Start", "StartEmbedded", "Use",
	},
	"semaphore": {
		"CapacityError", "CapacityError.Error", "CapacityError.Is",
		"ErrCapacityMismatch", "ErrReleaseTooMany",
		"New", "Option",
		"Semaphore", "Semaphore.Acquire", "Semaphore.Capacity", "Semaphore.Do", "Semaphore.Locker",
		"Semaphore.Name", "Semaphore.Obtain", "Semaphore.Release", "Semaphore.TryAcquire",
		"Semaphore.TryDo", "Semaphore.TryObtain",
		"WithErrorHandler", "WithFencing", "WithLabel", "WithTTL",
	},
}

func TestPublicSurfaceIsTheListedOne(t *testing.T) {
	for pkg, want := range surface {
		t.Run(pkg, func(t *testing.T) {
			got := exports(t, filepath.Join("..", "..", pkg))
			t.Logf("%s: %d exported identifiers: %s", pkg, len(got), strings.Join(got, " "))
			budget := primitiveBudget
			switch pkg {
			case "lease":
				budget = leaseBudget
			case "mutex":
				budget = mutexBudget
			case "tracing", "watchdog", "fence":
				budget = len(want) // names to find telemetry by, causes, a resource check: no budget of their own
			}
			if len(got) > budget {
				t.Errorf("%s exports %d identifiers; the budget is %d", pkg, len(got), budget)
			}
			for _, name := range got {
				if !slices.Contains(want, name) {
					t.Errorf("%s exports %s, which the list does not have: is it something a user calls? add it to the list, and say why in the issue note", pkg, name)
				}
			}
			for _, name := range want {
				if !slices.Contains(got, name) {
					t.Errorf("%s no longer exports %s: take it off the list", pkg, name)
				}
			}
		})
	}
}

// exports type-checks the package in dir (its non-test files) and lists its exported
// identifiers, with the exported methods of its exported types (of the pointer's method set).
func exports(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", exportData(t, dir))}
	p, err := conf.Check(files[0].Name.Name, fset, files, nil)
	if err != nil {
		t.Fatalf("type-check %s: %v", dir, err)
	}
	var out []string
	for _, name := range p.Scope().Names() {
		obj := p.Scope().Lookup(name)
		if !obj.Exported() {
			continue
		}
		out = append(out, name)
		tn, ok := obj.(*types.TypeName)
		if !ok {
			continue
		}
		ms := types.NewMethodSet(types.NewPointer(tn.Type()))
		if types.IsInterface(tn.Type()) {
			ms = types.NewMethodSet(tn.Type())
		}
		for i := range ms.Len() {
			if m := ms.At(i).Obj(); m.Exported() {
				out = append(out, name+"."+m.Name())
			}
		}
	}
	slices.Sort(out)
	return out
}

// exportData returns a lookup of the compiled export data of the dependencies of the package in
// dir, which `go list -export` builds and finds.
func exportData(t *testing.T, dir string) importer.Lookup {
	t.Helper()
	cmd := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", ".")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export in %s: %v", dir, err)
	}
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "\t"); ok && file != "" {
			files[path] = file
		}
	}
	return func(path string) (io.ReadCloser, error) {
		file, ok := files[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	}
}
