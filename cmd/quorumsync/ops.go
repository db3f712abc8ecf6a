package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/quorumsync/quorumsync/lease"
)

// holdingJSON is a lease.Holding as inspect --json and break --json print it.
type holdingJSON struct {
	Mode   string    `json:"mode"`
	Token  string    `json:"token"`
	Host   string    `json:"host"`
	PID    int       `json:"pid"`
	Since  time.Time `json:"since"`
	Label  string    `json:"label,omitempty"`
	Weight int64     `json:"weight"`
	// TTLMillis is per node: what is left in ms; 0 where the node does not have it, -1 where
	// its key has no TTL.
	TTLMillis []int64 `json:"ttl_ms"`
	Fence     uint64  `json:"fence,omitempty"`
}

type stateJSON struct {
	Name    string        `json:"name"`
	Holders []holdingJSON `json:"holders"`
	Waiters []holdingJSON `json:"waiters"`
	// NodeErrors is per node: "" when it answered.
	NodeErrors []string `json:"node_errors"`
}

func toJSON(st lease.State) stateJSON {
	conv := func(hs []lease.Holding) []holdingJSON {
		out := []holdingJSON{}
		for _, h := range hs {
			j := holdingJSON{Mode: h.Mode, Token: h.Token, Host: h.Host, PID: h.PID, Since: h.Since, Label: h.Label, Weight: h.Weight, Fence: h.Fence}
			for _, t := range h.TTL {
				ms := t.Milliseconds()
				if t < 0 {
					ms = -1
				}
				j.TTLMillis = append(j.TTLMillis, ms)
			}
			out = append(out, j)
		}
		return out
	}
	out := stateJSON{Name: st.Name, Holders: conv(st.Holders), Waiters: conv(st.Waiters)}
	for _, err := range st.NodeErrs {
		s := ""
		if err != nil {
			s = err.Error()
		}
		out.NodeErrors = append(out.NodeErrors, s)
	}
	return out
}

// printState writes st as a table.
func printState(w io.Writer, st lease.State) {
	answered := 0
	for _, err := range st.NodeErrs {
		if err == nil {
			answered++
		}
	}
	fmt.Fprintf(w, "%s  (%d of %d nodes answered)\n", st.Name, answered, len(st.NodeErrs))
	for _, err := range st.NodeErrs {
		if err != nil {
			fmt.Fprintf(w, "  %v\n", err) // a *lease.NodeError: it names the node
		}
	}
	table := func(title string, hs []lease.Holding) {
		if len(hs) == 0 {
			fmt.Fprintf(w, "%s: none\n", title)
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  MODE\tN\tHOST\tPID\tSINCE\tTTL PER NODE\tFENCE COUNTER\tTOKEN\tLABEL")
		for _, h := range hs {
			var ttls []string
			for _, t := range h.TTL {
				switch {
				case t == 0:
					ttls = append(ttls, "-")
				case t < 0:
					ttls = append(ttls, "no-ttl")
				default:
					ttls = append(ttls, t.Round(time.Millisecond).String())
				}
			}
			fence := "-"
			if h.Fence > 0 {
				fence = fmt.Sprint(h.Fence)
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s (%s ago)\t%s\t%s\t%s\t%s\n", h.Mode, h.Weight, h.Host, h.PID,
				h.Since.Format(time.RFC3339), time.Since(h.Since).Round(time.Second), strings.Join(ttls, " "), fence, h.Token, h.Label)
		}
		_ = tw.Flush()
	}
	table("holders", st.Holders)
	table("waiters (in the order they are served)", st.Waiters)
}

// connect parses args with fs, checks that between least and most positional arguments came
// (want says what is wanted), and dials the quorum. ok is false when the command should exit with
// code; else the caller closes q.
func (c *cli) connect(ctx context.Context, fs *flag.FlagSet, args []string, least, most int, want string) (q *lease.Quorum, pos []string, code int, ok bool) {
	pos, _, code, ok = parse(fs, args)
	if !ok {
		return nil, nil, code, false
	}
	if len(pos) < least || len(pos) > most {
		fmt.Fprintf(c.stderr, "quorumsync %s: want %s\n", fs.Name(), want)
		return nil, nil, exitUsage, false
	}
	q, err := c.dial(ctx)
	if err != nil {
		return nil, nil, c.fail(err), false
	}
	return q, pos, 0, true
}

func (c *cli) inspect(args []string) int {
	fs := c.flags("inspect", "[flags] NAME", "Show who holds NAME under every primitive (mutex, rwmutex, semaphore), since when, with what label,\nwhat is left of each hold on every node, and who waits, in queue order.")
	asJSON := fs.Bool("json", false, "print JSON")
	watch := fs.Duration("watch", 0, "refresh every D until interrupted (for example 1s)")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	q, pos, code, ok := c.connect(ctx, fs, args, 1, 1, "one NAME")
	if !ok {
		return code
	}
	defer closeQuorum(q)
	for {
		st, err := q.Inspect(ctx, pos[0])
		if err != nil && (ctx.Err() != nil || st.NodeErrs == nil) {
			if ctx.Err() != nil {
				return exitOK // interrupted
			}
			return c.fail(err)
		}
		if *watch > 0 && !*asJSON {
			fmt.Fprint(c.stdout, "\033[H\033[2J") // clear the terminal
			fmt.Fprintf(c.stdout, "every %v, %s\n", *watch, time.Now().Format(time.TimeOnly))
		}
		if *asJSON {
			if err := json.NewEncoder(c.stdout).Encode(toJSON(st)); err != nil {
				return c.fail(err)
			}
		} else {
			printState(c.stdout, st)
		}
		if *watch <= 0 {
			if err != nil { // most nodes did not answer: what the others have is above
				return c.fail(err)
			}
			return exitOK
		}
		select {
		case <-ctx.Done():
			return exitOK
		case <-time.After(*watch):
		}
	}
}

func (c *cli) list(args []string) int {
	fs := c.flags("ls", "[flags] [PATTERN]", "List the names that something holds or waits for, under any primitive, matching PATTERN (a Redis glob;\ndefault *). It scans the keys with SCAN, never KEYS.")
	asJSON := fs.Bool("json", false, "print a JSON array")
	ctx := context.Background()
	q, pos, code, ok := c.connect(ctx, fs, args, 0, 1, "at most one PATTERN")
	if !ok {
		return code
	}
	defer closeQuorum(q)
	pattern := "*"
	if len(pos) == 1 {
		pattern = pos[0]
	}
	names, err := q.List(ctx, pattern)
	if *asJSON {
		if names == nil {
			names = []string{}
		}
		_ = json.NewEncoder(c.stdout).Encode(names)
	} else {
		for _, n := range names {
			fmt.Fprintln(c.stdout, n)
		}
	}
	if err != nil { // nodes that did not answer: the list may miss what they hold
		return c.fail(err)
	}
	return exitOK
}

func (c *cli) breakLock(args []string) int {
	fs := c.flags("break", "[flags] NAME", "Force-release NAME: remove its holders on every node, under every primitive, and wake its waiters\nas a release would. A broken holder learns it at its next renewal (within a third of its TTL);\nuntil then it may still act as the holder. Break a lock whose holder is stuck or gone.")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	ctx := context.Background()
	q, pos, code, ok := c.connect(ctx, fs, args, 1, 1, "one NAME")
	if !ok {
		return code
	}
	defer closeQuorum(q)
	// Asked first: it breaks the holders it showed, not whoever holds the name by then. With
	// --yes, whoever holds it, in the break's own lookup.
	var tokens []string
	if !*yes {
		st, err := q.Inspect(ctx, pos[0])
		if err != nil {
			return c.fail(err)
		}
		if len(st.Holders) == 0 {
			fmt.Fprintf(c.stdout, "nothing holds %q: nothing to break\n", pos[0])
			return exitOK
		}
		printState(c.stderr, st)
		fmt.Fprintf(c.stderr, "break the %d holder(s) of %q? [y/N] ", len(st.Holders), pos[0])
		answer, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(c.stderr, "not broken")
			return exitFailed
		}
		for _, h := range st.Holders {
			tokens = append(tokens, h.Token)
		}
	}
	broken, err := q.Break(ctx, pos[0], tokens...)
	switch {
	case err != nil:
		return c.fail(err)
	case len(broken.Holders) == 0 && *yes:
		fmt.Fprintf(c.stdout, "nothing holds %q: nothing to break\n", pos[0])
		return exitOK
	case len(broken.Holders) == 0:
		fmt.Fprintf(c.stdout, "the holder(s) shown hold %q no more: nothing broken\n", pos[0])
		return exitOK
	}
	for _, h := range broken.Holders {
		fmt.Fprintf(c.stdout, "broke %s %s: %s pid %d since %s, label %q\n", h.Mode, h.Token, h.Host, h.PID, h.Since.Format(time.RFC3339), h.Label)
	}
	if n := len(broken.Waiters); n > 0 {
		fmt.Fprintf(c.stdout, "%d waiter(s) queued: what the break freed went to them in queue order\n", n)
	}
	return exitOK
}

func (c *cli) health(args []string) int {
	fs := c.flags("health", "[flags]", "Show each node's health: whether it answers and how fast, its version, role and replicas, persistence,\neviction policy, uptime, whether its ACL allows what the library needs, and what in its set-up can\nbreak exclusion. Exits 1 if a node did not answer or its ACL refuses something it allowed when\nhealth connected; a node that refuses at connection (credentials, ACL, TLS) is reported at once\n(exit 78), naming each.")
	asJSON := fs.Bool("json", false, "print JSON")
	ctx := context.Background()
	q, _, code, ok := c.connect(ctx, fs, args, 0, 0, "no arguments")
	if !ok {
		return code
	}
	defer closeQuorum(q)
	hs, err := q.Health(ctx)
	if err != nil {
		return c.fail(err)
	}
	status := exitOK
	type nodeJSON struct {
		Addr      string   `json:"addr"`
		Answered  bool     `json:"answered"`
		Error     string   `json:"error,omitempty"`
		LatencyUS int64    `json:"latency_us"`
		Version   string   `json:"version"`
		Role      string   `json:"role"`
		Replicas  int      `json:"replicas"`
		AOF       bool     `json:"aof"`
		Fsync     string   `json:"appendfsync"`
		Eviction  string   `json:"maxmemory_policy"`
		UptimeS   int64    `json:"uptime_s"`
		ACL       string   `json:"acl_error,omitempty"`
		Warnings  []string `json:"warnings"`
	}
	var out []nodeJSON
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDR\tANSWERS\tLATENCY\tVERSION\tROLE\tREPLICAS\tAOF\tFSYNC\tEVICTION\tUPTIME\tACL")
	for i, h := range hs {
		if h.Err != nil { // nothing known of it but that it did not answer
			status = exitFailed
			out = append(out, nodeJSON{Addr: h.Addr, Error: h.Err.Error(), Warnings: []string{}})
			fmt.Fprintf(tw, "%d\t%s\tNO\t-\t-\t-\t-\t-\t-\t-\t-\t-\n", i, h.Addr)
			continue
		}
		answers, acl := "yes", "ok"
		j := nodeJSON{Addr: h.Addr, Answered: true, LatencyUS: h.Latency.Microseconds(), Version: h.Version, Role: h.Role, Replicas: h.Replicas,
			AOF: h.AOF, Fsync: h.Fsync, Eviction: h.Eviction, UptimeS: int64(h.Uptime.Seconds()), Warnings: h.Warnings}
		if h.ACL != nil {
			acl, status, j.ACL = "REFUSES", exitFailed, h.ACL.Error()
		}
		if j.Warnings == nil {
			j.Warnings = []string{}
		}
		out = append(out, j)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%s\t%s\t%d\t%v\t%s\t%s\t%v\t%s\n", i, h.Addr, answers, h.Latency.Round(time.Microsecond),
			h.Version, h.Role, h.Replicas, h.AOF, h.Fsync, h.Eviction, h.Uptime, acl)
	}
	if *asJSON {
		_ = json.NewEncoder(c.stdout).Encode(out)
		return status
	}
	_ = tw.Flush()
	for i, h := range hs {
		if h.Err != nil {
			fmt.Fprintln(c.stdout, h.Err) // a *lease.NodeError: it names the node
		}
		if h.ACL != nil {
			fmt.Fprintln(c.stdout, h.ACL)
		}
		for _, w := range h.Warnings {
			fmt.Fprintf(c.stdout, "node %d: warning: %s\n", i, w)
		}
	}
	return status
}
