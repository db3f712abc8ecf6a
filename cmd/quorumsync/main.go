// Command quorumsync runs a command under a lock held on Redis, and looks into and breaks the
// locks of the quorumsync library, from a shell or a cron line.
//
//	quorumsync lock    [flags] NAME -- COMMAND [ARG...]   run COMMAND holding the mutex NAME
//	quorumsync rlock   [flags] NAME -- COMMAND [ARG...]   ... holding a read lock of the rwmutex NAME
//	quorumsync wlock   [flags] NAME -- COMMAND [ARG...]   ... holding the write lock of the rwmutex NAME
//	quorumsync sem     [flags] NAME --capacity C [--permits N] -- COMMAND [ARG...]
//	                                                      ... holding N permits of the semaphore NAME
//	quorumsync inspect [--json] [--watch D] NAME          who holds NAME, who waits, on every node
//	quorumsync ls      [--json] [PATTERN]                 the names held or waited for
//	quorumsync break   [--yes] NAME                       force-release NAME (an administrator's act)
//	quorumsync health  [--json]                           each node's health and set-up
//
// break shows the holders and asks; it then breaks those it showed, not whoever holds NAME by
// then (with --yes, whoever holds it). The label (--label; default the command's name) is stored
// on the servers and shown by inspect to anyone who can read them: keep secrets out of it.
//
// The nodes come from --redis URL (repeatable: one per node of the quorum) or from
// QUORUMSYNC_REDIS (comma-separated URLs); default redis://localhost:6379. The URL forms are those
// of lease.Dial: redis://, rediss://, unix://, redis+sentinel://, redis+cluster://.
//
// lock, rlock, wlock and sem renew the lock for as long as COMMAND runs, forward SIGINT, SIGTERM
// and SIGHUP to it, and exit with its exit code. COMMAND runs in a process group of its own (as
// under timeout(1)), so that a signal reaches it and its children once; it is not meant to read
// the terminal. If the lock is lost while COMMAND runs (its holder was broken, or the nodes were
// unreachable past the TTL), quorumsync sends COMMAND SIGTERM, then SIGKILL after --grace
// (--on-lost=term, the default), SIGKILL at once (kill), or nothing (ignore). If quorumsync itself
// dies (SIGKILL, a crash), Linux kills COMMAND's own process with it (PR_SET_PDEATHSIG), so that
// it does not run on once the lock expires; processes COMMAND started do run on (make a script's
// last step exec), and on other systems COMMAND does too. The lock commands need a Unix-like
// system; the others run anywhere.
//
// Exit codes:
//
//	0-255  COMMAND's own exit code (128+N when a signal N ended it)
//	75     busy: --try found the lock held, or --wait ran out (--conflict-exit-code changes it)
//	69     unavailable: too few nodes answered for a majority
//	78     misconfigured: a node refused the credentials, a command (ACL) or TLS; retrying will not help
//	70     the lock was lost while COMMAND ran, and COMMAND was ended (--on-lost=term or kill)
//	64     usage: bad flags or arguments
//	126    COMMAND could not be run; 127: COMMAND was not found
//	1      inspect, ls, break, health: the call failed otherwise, or break was declined; ls: a
//	       minority of the nodes did not answer (the names of the others are printed); health: a
//	       node did not answer, or its ACL lost a permission since health connected (a node
//	       that refuses at connection exits 78, named)
//
// With --fencing, COMMAND gets the lock's fencing token in QUORUMSYNC_FENCE (for sem, one per
// permit, comma-separated): a number that increases with every holder, for the resource to
// refuse a stale holder's writes. COMMAND always gets QUORUMSYNC_NAME and QUORUMSYNC_TOKEN (the
// holder's token, as inspect shows it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/lease"
)

// Exit codes (see the package doc).
const (
	exitOK            = 0
	exitFailed        = 1
	exitUsage         = 64
	exitUnavailable   = 69
	exitLost          = 70
	exitBusy          = 75
	exitMisconfigured = 78
	exitCannotRun     = 126
	exitNotFound      = 127
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// commands are the subcommands, with a line of help each.
var commands = []struct {
	name, args, help string
	run              func(c *cli, args []string) int
}{
	{"lock", "NAME -- COMMAND [ARG...]", "run COMMAND holding the mutex NAME", func(c *cli, a []string) int { return c.locked("lock", a) }},
	{"rlock", "NAME -- COMMAND [ARG...]", "run COMMAND holding a read lock of the rwmutex NAME", func(c *cli, a []string) int { return c.locked("rlock", a) }},
	{"wlock", "NAME -- COMMAND [ARG...]", "run COMMAND holding the write lock of the rwmutex NAME", func(c *cli, a []string) int { return c.locked("wlock", a) }},
	{"sem", "NAME --capacity C [--permits N] -- COMMAND [ARG...]", "run COMMAND holding N permits of the semaphore NAME", func(c *cli, a []string) int { return c.locked("sem", a) }},
	{"inspect", "[--json] [--watch D] NAME", "show who holds NAME and who waits, on every node", (*cli).inspect},
	{"ls", "[--json] [PATTERN]", "list the names held or waited for (a Redis glob; default *)", (*cli).list},
	{"break", "[--yes] NAME", "force-release NAME: remove its holders and wake its waiters", (*cli).breakLock},
	{"health", "[--json]", "show each node's health and set-up", (*cli).health},
}

// cli is one run of the command: its streams and the flags every subcommand shares.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	redis          urls
	prefix         string
	nodeTimeout    time.Duration
	verbose        bool
}

// urls is a repeatable --redis flag.
type urls []string

func (u *urls) String() string { return strings.Join(*u, ",") }
func (u *urls) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty URL")
	}
	*u = append(*u, v)
	return nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		c.usage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, cmd := range commands {
		if cmd.name == args[0] {
			return cmd.run(c, args[1:])
		}
	}
	fmt.Fprintf(stderr, "quorumsync: unknown command %q\n", args[0])
	c.usage(stderr)
	return exitUsage
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: quorumsync COMMAND [flags] ARGS")
	fmt.Fprintln(w, "\nCommands:")
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-8s %s\n           %s\n", cmd.name, cmd.args, cmd.help)
	}
	fmt.Fprintln(w, "\nEvery command takes --redis URL (repeatable; default $QUORUMSYNC_REDIS, else redis://localhost:6379)")
	fmt.Fprintln(w, "and --help. Exit codes: 75 busy, 69 unavailable, 78 misconfigured, 70 lock lost, 64 usage,")
	fmt.Fprintln(w, "126/127 command not runnable/found; lock, rlock, wlock and sem otherwise exit with COMMAND's code.")
}

// flags returns a flag set for a subcommand with the shared flags on it.
func (c *cli) flags(name, args, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Var(&c.redis, "redis", "a node's URL (repeat for each node of the quorum); default $QUORUMSYNC_REDIS, else redis://localhost:6379")
	fs.StringVar(&c.prefix, "prefix", "", "the key prefix (lease.WithKeyPrefix); default quorumsync:")
	fs.DurationVar(&c.nodeTimeout, "node-timeout", 0, "the per-node timeout (lease.WithNodeTimeout); default the library's")
	fs.BoolVar(&c.verbose, "v", false, "log the library's warnings (persistence, eviction, replicas) and retries")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: quorumsync %s %s\n\n%s\n\nFlags:\n", name, args, help)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args with fs, flags and positional arguments mixed, up to a "--", and returns the
// positional arguments and what follows the "--" (nil when there is none). ok is false when the
// command should exit with code.
func parse(fs *flag.FlagSet, args []string) (pos, rest []string, code int, ok bool) {
	for i, a := range args {
		if a == "--" {
			args, rest = args[:i], args[i+1:]
			if rest == nil {
				rest = []string{}
			}
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, exitOK, false
			}
			return nil, nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			return pos, rest, 0, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// dial connects to the nodes the flags or the environment name.
func (c *cli) dial(ctx context.Context, opts ...lease.Option) (*lease.Quorum, error) {
	nodes := []string(c.redis)
	if len(nodes) == 0 {
		if env := os.Getenv("QUORUMSYNC_REDIS"); env != "" {
			for _, u := range strings.Split(env, ",") {
				if u = strings.TrimSpace(u); u != "" {
					nodes = append(nodes, u)
				}
			}
		}
	}
	if len(nodes) == 0 {
		nodes = []string{"redis://localhost:6379"}
	}
	level := slog.LevelError
	if c.verbose {
		level = slog.LevelInfo
	} else {
		redis.SetLogger(quietRedis{}) // go-redis logs every failed dial; the error says it once
	}
	opts = append([]lease.Option{lease.WithLogger(slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level})))}, opts...)
	if c.prefix != "" {
		opts = append(opts, lease.WithKeyPrefix(c.prefix))
	}
	if c.nodeTimeout > 0 {
		opts = append(opts, lease.WithNodeTimeout(c.nodeTimeout))
	}
	return lease.Dial(ctx, nodes, opts...)
}

// quietRedis is go-redis's logger when -v is not given.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// fail prints err and returns the exit code for it. The library's errors say what they are
// ("unavailable", "misconfigured", "invalid argument"), but for busy, which they say as "not
// acquired": that one gets the word in front.
func (c *cli) fail(err error) int {
	code, kind := classify(err)
	if code == exitBusy {
		fmt.Fprintf(c.stderr, "quorumsync: %s: %v\n", kind, err)
	} else {
		fmt.Fprintf(c.stderr, "quorumsync: %v\n", err)
	}
	return code
}

// classify maps an error of the library to an exit code and a word for it.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, lease.ErrInvalidArgument):
		return exitUsage, "invalid argument"
	case errors.Is(err, lease.ErrMisconfigured):
		return exitMisconfigured, "misconfigured"
	case errors.Is(err, lease.ErrUnavailable):
		return exitUnavailable, "unavailable"
	case errors.Is(err, lease.ErrNotAcquired), errors.Is(err, context.DeadlineExceeded):
		return exitBusy, "busy"
	}
	return exitFailed, "error"
}

// closeQuorum closes q, bounded.
func closeQuorum(q *lease.Quorum) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = q.Close(ctx)
}
