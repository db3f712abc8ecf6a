package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
)

// Mode is how a claim shares its name with other claims.
type Mode string

const (
	// Exclusive: nobody else may hold the name (a mutex, an rwmutex writer).
	Exclusive Mode = "x"
	// Shared: other Shared holders may hold it too, an Exclusive one may not (an rwmutex reader).
	Shared Mode = "s"
	// Weighted: holders together hold at most Capacity permits (a semaphore).
	Weighted Mode = "w"
)

// Write is what became of a critical section's write to the resource.
type Write string

const (
	WriteNone    Write = ""        // no write attempted (yet)
	WriteOK      Write = "ok"      // applied
	WriteRefused Write = "refused" // refused by the fence: a newer token had been seen
	WriteFailed  Write = "failed"  // error: it may or may not have been applied
)

// Section is one critical section as its client recorded it. Every time is on the [Mono] clock,
// in nanoseconds, so sections of different processes compare directly.
//
// A process client writes a section twice: when it enters (Exit 0, Until as granted) and when it
// leaves. A section whose process was killed in between keeps only the first line: its end is
// unknown, so its validity is taken to end at the Until it had on entry (it may have renewed past
// that before it died, which makes the checks miss overlaps rather than invent them).
type Section struct {
	Client    string `json:"client"`
	Seq       int    `json:"seq"`
	Name      string `json:"name"`
	Primitive string `json:"prim"`
	Mode      Mode   `json:"mode"`
	Weight    int    `json:"w,omitempty"`   // permits held (Weighted)
	Capacity  int    `json:"cap,omitempty"` // the semaphore's capacity (Weighted)

	AcquireStart int64 `json:"acq"`            // before Lock was called
	Enter        int64 `json:"enter"`          // after Lock returned
	Exit         int64 `json:"exit,omitempty"` // before Unlock was called; 0: never recorded
	// Until is the lease's validity end: as last renewed when read at Exit, or as granted when
	// Exit is 0. Granted is the validity end as granted, read at Enter.
	Until   int64 `json:"until"`
	Granted int64 `json:"granted,omitempty"`
	// DoneAt is when the holder saw Done close while it held the lease (an upper bound of the
	// moment it closed); 0 if it did not close before Exit. DoneUntil is Until read then.
	DoneAt    int64 `json:"done,omitempty"`
	DoneUntil int64 `json:"doneUntil,omitempty"`
	// Lost: the lease reported a loss (Err) at Exit.
	Lost bool `json:"lost,omitempty"`

	// Fence is the fencing token when Fenced; the resource write was then the fenced one.
	Fence  uint64 `json:"fence,omitempty"`
	Fenced bool   `json:"fenced,omitempty"`
	// Slots and SlotFences are a semaphore permit's slots and, fenced, each slot's token.
	Slots      []int64  `json:"slots,omitempty"`
	SlotFences []uint64 `json:"slotFences,omitempty"`
	// Names and Fences are a multi claim's names, sorted (the order of its leases), and, fenced,
	// each name's token; Name is then the names joined with "+". The checks by name see such a
	// section once per name (see [PerName]).
	Names  []string `json:"names,omitempty"`
	Fences []uint64 `json:"fences,omitempty"`
	// Value is what an election's leader campaigned with (unique per campaign), and Fence its
	// term: what its observers hear of it.
	Value string `json:"value,omitempty"`

	// Ops are the section's uses of the resource, planned at entry (see Op).
	Ops []Op `json:"ops,omitempty"`
	// UseAt is when the first write to the resource was sent, UseUntil the lease's Until read just
	// before, UseDone whether Done had closed by then. UseAt 0: no write was sent.
	UseAt    int64 `json:"use,omitempty"`
	UseUntil int64 `json:"useUntil,omitempty"`
	UseDone  bool  `json:"useDone,omitempty"`
	// Abandoned: a careful section found its lease gone or about to go and did not write.
	Abandoned bool `json:"abandoned,omitempty"`
}

// Op is one use of the resource by a section: a read of a counter, and, for a claim that writes
// (an exclusive claim, a permit's slot), a write of the value read plus one. Times are on the Mono
// clock; a zero time was never reached, or never recorded (the client was killed).
type Op struct {
	Key   string `json:"key"`             // the counter (see Resource)
	Fence uint64 `json:"fence,omitempty"` // the token the read and write carry; 0: plain GET and SET

	ReadCall int64 `json:"rc,omitempty"`
	ReadRet  int64 `json:"rr,omitempty"`
	Read     Write `json:"r,omitempty"` // ok, refused (a newer token was seen) or failed
	Value    int64 `json:"v,omitempty"` // what the read returned

	WriteCall int64 `json:"wc,omitempty"`
	WriteRet  int64 `json:"wr,omitempty"`
	Wrote     Write `json:"w,omitempty"`
}

// End returns the end of the section's validity: the earlier of its exit and its Until, or its
// Until when the exit is unknown.
func (s Section) End() int64 {
	if s.Exit == 0 || s.Until < s.Exit {
		return s.Until
	}
	return s.Exit
}

// ResourceKey names the counter of a name (and of a semaphore's slot, when slot >= 0): fenced and
// unfenced counters are separate keys.
func ResourceKey(name string, fenced bool, slot int64) string {
	key := "unfenced:" + name
	if fenced {
		key = "fenced:" + name
	}
	if slot >= 0 {
		key += fmt.Sprintf("/%d", slot)
	}
	return key
}

func (s Section) String() string {
	out := fmt.Sprintf("%s#%d %s %s enter=%d exit=%d until=%d (held %s, %s of it valid)",
		s.Client, s.Seq, s.Primitive, s.Name, s.Enter, s.Exit, s.Until, ms(s.Exit-s.Enter), ms(s.End()-s.Enter))
	if s.Exit == 0 {
		out = fmt.Sprintf("%s#%d %s %s enter=%d exit=? until=%d (client killed inside)", s.Client, s.Seq, s.Primitive, s.Name, s.Enter, s.Until)
	}
	if s.AcquireStart != 0 {
		out += fmt.Sprintf(" acquired-in=%s", ms(s.Enter-s.AcquireStart))
	}
	switch {
	case s.Fenced && s.Primitive == PrimElection:
		out += fmt.Sprintf(" term=%d", s.Fence)
	case s.Fenced && len(s.Names) > 0:
		out += fmt.Sprintf(" fences=%v", s.Fences)
	case s.Fenced:
		out += fmt.Sprintf(" fence=%d", s.Fence)
	}
	for _, op := range s.Ops {
		out += fmt.Sprintf(" %s:read=%s(%d)", op.Key, op.Read, op.Value)
		if op.WriteCall != 0 {
			out += fmt.Sprintf(",wrote=%s(%d)", op.Wrote, op.Value+1)
		}
	}
	if s.UseAt != 0 {
		out += fmt.Sprintf(" write@%+s-of-until", ms(s.UseAt-s.UseUntil))
	}
	if s.DoneAt != 0 {
		out += fmt.Sprintf(" done@%+s-of-until", ms(s.DoneAt-s.DoneUntil))
	}
	return out
}

// PerName returns sections with each multi claim's section (see Section.Names) replaced by one
// section per name: that name, its token, and its uses of that name's counter; the others as they
// are. A multi claim holds each of its names like a mutex of that name, so the checks by name
// (exclusion, fencing order, the resource) run on what this returns.
func PerName(sections []Section) []Section {
	out := make([]Section, 0, len(sections))
	for _, s := range sections {
		if len(s.Names) == 0 {
			out = append(out, s)
			continue
		}
		for i, name := range s.Names {
			p := s
			p.Name, p.Names, p.Fences, p.Fence, p.Ops = name, nil, nil, 0, nil
			if s.Fenced && i < len(s.Fences) {
				p.Fence = s.Fences[i]
			}
			key := ResourceKey(name, s.Fenced, -1)
			for _, op := range s.Ops {
				if op.Key == key {
					p.Ops = append(p.Ops, op)
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// Observation is a new leader of an election as an observer heard it (Election.Observe): the
// observer, the election's name, the leader's term and value, and when it was heard.
type Observation struct {
	Observer string
	Name     string
	Leader
}

// History collects sections from many goroutines. The zero value is ready to use.
type History struct {
	mu       sync.Mutex
	sections []Section
}

// Add records s.
func (h *History) Add(s Section) {
	h.mu.Lock()
	h.sections = append(h.sections, s)
	h.mu.Unlock()
}

// AddAll records every section of ss.
func (h *History) AddAll(ss []Section) {
	h.mu.Lock()
	h.sections = append(h.sections, ss...)
	h.mu.Unlock()
}

// Sections returns a copy of what was recorded, ordered by entry.
func (h *History) Sections() []Section {
	h.mu.Lock()
	out := append([]Section(nil), h.sections...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Enter < out[j].Enter })
	return out
}

// Journal writes sections as JSON lines to a file, one write(2) per line, so a process killed at
// any moment leaves every line it finished (and at most one torn line, which ReadJournal drops).
type Journal struct {
	mu sync.Mutex
	f  *os.File
}

// CreateJournal creates (or truncates) the file at path.
func CreateJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &Journal{f: f}, nil
}

// Write appends s as one line.
func (j *Journal) Write(s Section) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err = j.f.Write(b)
	return err
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// ReadJournal reads a journal. A later line for the same client and sequence number replaces an
// earlier one (the exit line replaces the entry line). A last line without its newline, which a
// killed writer can leave, is dropped.
func ReadJournal(r io.Reader) ([]Section, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1] // torn last line
	}
	type key struct {
		client string
		seq    int
	}
	index := map[key]int{}
	var out []Section
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var s Section
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("journal line %d: %w", line, err)
		}
		k := key{s.Client, s.Seq}
		if i, ok := index[k]; ok {
			out[i] = s
			continue
		}
		index[k] = len(out)
		out = append(out, s)
	}
	return out, sc.Err()
}

// ReadJournalFile reads the journal at path (see [ReadJournal]).
func ReadJournalFile(path string) ([]Section, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadJournal(f)
}
