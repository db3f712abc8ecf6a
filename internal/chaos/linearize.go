package chaos

import (
	"fmt"
	"math"
	"time"

	"github.com/anishathalye/porcupine"
)

// CheckLinearizable is a check on the resource: every counter's history of reads and writes must
// be linearizable as the register the lock makes of it. That is a register whose writes each
// write the value their own section read, plus one — so a write that finds another value there
// (someone wrote between this section's read and its write) has no place in any order — and
// whose fenced reads and writes refuse a token below the highest seen (lua/fenced_read.lua,
// lua/fenced_write.lua). Plain reads (an rwmutex's readers) must return the value of the latest
// write before them. Operations of unknown outcome — a read or a write that failed, a section
// killed after its read — may take effect at any time after their call, or never. The checker is
// porcupine (github.com/anishathalye/porcupine), one run per counter, each within timeout: a run
// that does not finish is reported too, never taken for a pass.
func CheckLinearizable(sections []Section, timeout time.Duration) []Violation {
	byKey := map[string][]porcupine.Operation{}
	client := map[string]int{}
	for _, s := range sections {
		id, ok := client[s.Client]
		if !ok {
			id = len(client)
			client[s.Client] = id
		}
		for _, op := range s.Ops {
			byKey[op.Key] = append(byKey[op.Key], registerOps(s, op, id)...)
		}
	}
	var out []Violation
	for _, key := range sortedKeys(byKey) {
		ops := byKey[key]
		res, info := porcupine.CheckOperationsVerbose(registerModel, ops, timeout)
		switch res {
		case porcupine.Illegal:
			out = append(out, Violation{Check: CheckLinear, Name: key,
				Detail: fmt.Sprintf("its %d reads and writes have no linearization as a register written by one section at a time; %s", len(ops), longestPrefix(info))})
		case porcupine.Unknown:
			out = append(out, Violation{Check: CheckLinear, Name: key,
				Detail: fmt.Sprintf("the check of its %d reads and writes did not finish within %v", len(ops), timeout)})
		}
	}
	return out
}

// longestPrefix describes where the longest partial linearization porcupine found stops.
func longestPrefix(info porcupine.LinearizationInfo) string {
	best := 0
	var last []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > best {
				best, last = len(lin), lin
			}
		}
	}
	if best == 0 {
		return "none of it linearizes"
	}
	op := last[len(last)-1]
	return fmt.Sprintf("the longest order found holds %d operations, the last %s", best, registerModel.DescribeOperation(op.Input, op.Output))
}

// unknown is the return time of an operation whose outcome is not known: it may take effect any
// time after its call.
const unknown = math.MaxInt64

type regState struct {
	v     int64
	fence uint64
}

type regIn struct {
	write         bool
	token         uint64 // 0: plain
	expect, value int64  // a write: the value its section read, and the one it writes
}

type regOut struct {
	outcome Write // WriteNone: unknown
	value   int64 // a read's value
}

// registerOps turns one use of the resource into the register's operations.
func registerOps(s Section, op Op, client int) []porcupine.Operation {
	var out []porcupine.Operation
	read := porcupine.Operation{ClientId: client, Input: regIn{token: op.Fence}, Metadata: s}
	switch {
	case op.ReadCall == 0 || op.ReadRet == 0 || op.Read == WriteFailed:
		// Killed before the read was journaled, or the read failed: a fenced read may have raised
		// the fence at any time since; a plain one changed nothing.
		if op.Fence != 0 {
			read.Call, read.Return, read.Output = max(op.ReadCall, s.Enter), unknown, regOut{}
			out = append(out, read)
		}
	default:
		read.Call, read.Return, read.Output = op.ReadCall, op.ReadRet, regOut{outcome: op.Read, value: op.Value}
		out = append(out, read)
	}
	write := porcupine.Operation{ClientId: client, Input: regIn{write: true, token: op.Fence, expect: op.Value, value: op.Value + 1}, Metadata: s}
	switch {
	case op.WriteCall != 0 && (op.Wrote == WriteOK || op.Wrote == WriteRefused):
		write.Call, write.Return, write.Output = op.WriteCall, op.WriteRet, regOut{outcome: op.Wrote}
	case op.WriteCall != 0:
		write.Call, write.Return, write.Output = op.WriteCall, unknown, regOut{}
	case op.Read == WriteOK && maybeWrote(s, op):
		write.Call, write.Return, write.Output = op.ReadRet, unknown, regOut{}
	default:
		return out
	}
	return append(out, write)
}

var registerModel = (&porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{regState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		st, in, out := state.(regState), input.(regIn), output.(regOut)
		if !in.write {
			return stepRead(st, in, out)
		}
		return stepWrite(st, in, out)
	},
	Equal: func(a, b interface{}) bool { return a.(regState) == b.(regState) },
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(regIn), output.(regOut)
		outcome := string(out.outcome)
		if outcome == "" {
			outcome = "unknown"
		}
		if in.write {
			return fmt.Sprintf("write %d over %d (token %d): %s", in.value, in.expect, in.token, outcome)
		}
		return fmt.Sprintf("read (token %d): %s %d", in.token, outcome, out.value)
	},
	DescribeState: func(state interface{}) string {
		st := state.(regState)
		return fmt.Sprintf("value %d, fence %d", st.v, st.fence)
	},
}).ToModel()

func stepRead(st regState, in regIn, out regOut) []interface{} {
	if in.token == 0 {
		if out.outcome == WriteOK && out.value != st.v {
			return nil
		}
		return []interface{}{st}
	}
	if in.token < st.fence {
		if out.outcome == WriteOK {
			return nil
		}
		return []interface{}{st}
	}
	raised := regState{v: st.v, fence: in.token}
	switch out.outcome {
	case WriteOK:
		if out.value != st.v {
			return nil
		}
		return []interface{}{raised}
	case WriteRefused:
		return nil
	default:
		return []interface{}{st, raised}
	}
}

func stepWrite(st regState, in regIn, out regOut) []interface{} {
	if in.token != 0 && in.token < st.fence {
		if out.outcome == WriteOK {
			return nil
		}
		return []interface{}{st}
	}
	applied := regState{v: in.value, fence: max(st.fence, in.token)}
	switch out.outcome {
	case WriteOK:
		if in.expect != st.v {
			return nil
		}
		return []interface{}{applied}
	case WriteRefused:
		return nil
	default:
		if in.expect != st.v {
			return []interface{}{st}
		}
		return []interface{}{st, applied}
	}
}
