package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// sentinel is the type of the sentinel errors. Its ErrorType names the error for tracing (the
// error.type attribute of OpenTelemetry), which otherwise sees only wrapper types. A sentinel made
// by [NewErrors] for another package also matches the lease sentinel it derives from.
type sentinel struct {
	msg, typ string
	parent   error
}

func (e *sentinel) Error() string { return e.msg }

// ErrorType returns a stable, low-cardinality name for the error, such as "mutex.not_acquired".
func (e *sentinel) ErrorType() string { return e.typ }

// Is makes the sentinels of one meaning match each other: lease's and every package's derived from
// it (mutex's "not acquired", rwmutex's and lease.ErrNotAcquired are one condition).
func (e *sentinel) Is(target error) bool {
	t, ok := target.(*sentinel)
	return ok && t.root() == e.root()
}

func (e *sentinel) root() *sentinel {
	for e.parent != nil {
		e = e.parent.(*sentinel)
	}
	return e
}

var (
	// ErrNotAcquired reports a busy name: so many nodes answered "taken" that no quorum was
	// possible (the acquire outcomes are documented on package lease's ErrNotAcquired).
	ErrNotAcquired error = &sentinel{msg: "lease: not acquired", typ: "lease.not_acquired"}
	// ErrUnavailable reports an acquire that too few nodes answered for a quorum to be possible:
	// the nodes are down, hung or unreachable. The error carries their [NodeError]s.
	ErrUnavailable error = &sentinel{msg: "lease: unavailable", typ: "lease.unavailable"}
	// ErrMisconfigured reports a refusal no retry can heal: a node refused the command or key for
	// lack of permission (NOPERM, an ACL without a command the library needs), refused the
	// credentials (NOAUTH, WRONGPASS), or the client and the server disagree on TLS; a Cluster
	// that refuses a key as CROSSSLOT; a semaphore whose capacity differs from the one in use. The
	// error says which node refused what.
	ErrMisconfigured error = &sentinel{msg: "lease: misconfigured", typ: "lease.misconfigured"}
	// ErrNotHeld reports that a release or renewal found the lease gone (expired, or taken by
	// another holder after it expired) on too many nodes. A nil *Lease's Err returns it too.
	ErrNotHeld error = &sentinel{msg: "lease: not held", typ: "lease.not_held"}
	// ErrLost is matched by [Lease.Err] and by a release once the lease was lost: it expired before
	// it could be renewed, it was found gone on the servers, it reached its max hold time, or its
	// quorum was closed. The error also carries the cause.
	ErrLost error = &sentinel{msg: "lease: lost", typ: "lease.lost"}
	// ErrNotReleased reports a release that too few nodes answered: what is left on the others
	// expires within the TTL (and nodes that come back get the release then). The error carries
	// the node errors.
	ErrNotReleased error = &sentinel{msg: "lease: not released", typ: "lease.not_released"}
	// ErrReleased is returned by a second [Lease.Release], and by [Lease.Err] after a release.
	ErrReleased error = &sentinel{msg: "lease: already released", typ: "lease.released"}
	// ErrClosed reports a call on a closed [Quorum].
	ErrClosed error = &sentinel{msg: "lease: quorum closed", typ: "lease.closed"}
	// ErrInvalidArgument reports bad input. The error is an [ArgumentError] naming the argument.
	ErrInvalidArgument error = &sentinel{msg: "lease: invalid argument", typ: "lease.invalid_argument"}
	// ErrNoFencing reports a fencing token asked of a lease acquired without fencing: a misuse,
	// so it matches ErrInvalidArgument.
	ErrNoFencing error = &sentinel{msg: "lease: no fencing token", typ: "lease.no_fencing", parent: ErrInvalidArgument}
	// ErrNodeTimeout is matched by the [NodeError] of a node that did not answer within the
	// per-node timeout. It does not match context.DeadlineExceeded: the caller's deadline did not
	// pass.
	ErrNodeTimeout error = &sentinel{msg: "timed out", typ: "lease.node_timeout"}
)

// Errors is the set of sentinel errors of a package built on lease, such as mutex. Each has the
// package's name in its text ("mutex: not acquired") and also matches the lease sentinel it
// derives from, so errors.Is(err, lease.ErrNotAcquired) holds for mutex's "not acquired" too. Pass it in [Request.Errors]: the errors of that request then name the package the caller
// called.
type Errors struct {
	Package         string
	NotAcquired     error
	Unavailable     error
	Misconfigured   error
	NotHeld         error
	Lost            error
	NotReleased     error
	Released        error
	NoFencing       error
	Closed          error
	InvalidArgument error
}

// NewErrors returns the sentinels of package pkg. Call it once, in a package-level var. Sentinels
// of one meaning match each other whatever their package: errors.Is(errs.Lost, lease.ErrLost) is
// true, and so is the converse.
func NewErrors(pkg string) *Errors {
	d := func(parent error, what, typ string) error {
		return &sentinel{msg: pkg + ": " + what, typ: pkg + "." + typ, parent: parent}
	}
	return &Errors{
		Package:         pkg,
		NotAcquired:     d(ErrNotAcquired, "not acquired", "not_acquired"),
		Unavailable:     d(ErrUnavailable, "unavailable", "unavailable"),
		Misconfigured:   d(ErrMisconfigured, "misconfigured", "misconfigured"),
		NotHeld:         d(ErrNotHeld, "not held", "not_held"),
		Lost:            d(ErrLost, "lost", "lost"),
		NotReleased:     d(ErrNotReleased, "not released", "not_released"),
		Released:        d(ErrReleased, "already released", "released"),
		NoFencing:       d(ErrNoFencing, "no fencing token", "no_fencing"),
		Closed:          d(ErrClosed, "quorum closed", "closed"),
		InvalidArgument: d(ErrInvalidArgument, "invalid argument", "invalid_argument"),
	}
}

// leaseErrors are package lease's own.
var leaseErrors = &Errors{
	Package: "lease", NotAcquired: ErrNotAcquired, Unavailable: ErrUnavailable, Misconfigured: ErrMisconfigured, NotHeld: ErrNotHeld, Lost: ErrLost,
	NotReleased: ErrNotReleased, Released: ErrReleased, NoFencing: ErrNoFencing, Closed: ErrClosed, InvalidArgument: ErrInvalidArgument,
}

// ArgumentError is the error returned for bad input; it matches [ErrInvalidArgument] and the
// InvalidArgument sentinel of the package that returned it.
type ArgumentError struct {
	Package string // the package called, e.g. "mutex"
	Name    string // the lock's name, when the call was on a lock
	Arg     string // the argument, e.g. "ttl" or "nodes[2]"
	Reason  string
}

func (e *ArgumentError) Error() string {
	pkg := e.Package
	if pkg == "" {
		pkg = "lease"
	}
	if e.Name != "" {
		return fmt.Sprintf("%s: invalid argument %s for %q: %s", pkg, e.Arg, e.Name, e.Reason)
	}
	return fmt.Sprintf("%s: invalid argument %s: %s", pkg, e.Arg, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidArgument) true, and likewise for every package's
// InvalidArgument sentinel (see [NewErrors]).
func (e *ArgumentError) Is(target error) bool {
	if target == ErrInvalidArgument {
		return true
	}
	s, ok := target.(*sentinel)
	return ok && s.parent == ErrInvalidArgument
}

// ErrorType names the error for tracing.
func (e *ArgumentError) ErrorType() string {
	if e.Package == "" {
		return "lease.invalid_argument"
	}
	return e.Package + ".invalid_argument"
}

// Invalid returns the [ArgumentError] of errs' package for arg.
func (errs *Errors) Invalid(arg, format string, a ...any) error {
	return &ArgumentError{Package: errs.Package, Arg: arg, Reason: fmt.Sprintf(format, a...)}
}

// InvalidFor returns the [ArgumentError] of errs' package for arg of a call on the lock name.
func (errs *Errors) InvalidFor(name, arg, format string, a ...any) error {
	return &ArgumentError{Package: errs.Package, Name: name, Arg: arg, Reason: fmt.Sprintf(format, a...)}
}

// NodeError is the failure of one node in a fan-out. The errors of several nodes are joined; use
// errors.As to get at each.
type NodeError struct {
	Index int    // position of the node in the slice given to NewQuorum
	Addr  string // its address, when known
	Err   error
}

func (e *NodeError) Error() string {
	if e.Addr == "" {
		return fmt.Sprintf("node %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("node %d (%s): %v", e.Index, e.Addr, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// errorType names the error for tracing: "lease.node_timeout" or "lease.node_error".
func (e *NodeError) errorType() string {
	if isTimeout(e.Err) {
		return "lease.node_timeout"
	}
	return "lease.node_error"
}

// timeout reports whether the node did not answer in time.
func (e *NodeError) timeout() bool { return isTimeout(e.Err) }

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, ErrNodeTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// nodeTimeout is the failure of a node that did not answer within the per-node timeout.
type nodeTimeout struct{ after time.Duration }

func (e *nodeTimeout) Error() string        { return "timed out after " + e.after.String() }
func (e *nodeTimeout) Is(target error) bool { return target == ErrNodeTimeout }
func (e *nodeTimeout) Timeout() bool        { return true }

// opError is an error of the engine on a name: its text is "<sentinel> <name>: <detail>: <causes>",
// on one line, and it matches its sentinel and each of its causes (the ctx's error, node errors).
type opError struct {
	sentinel error
	name     string
	detail   string
	causes   []error
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString(e.sentinel.Error())
	b.WriteByte(' ')
	b.WriteString(strconv.Quote(e.name))
	e.writeRest(&b)
	return b.String()
}

// writeRest writes the detail and the causes. A cause about the same name says it without the
// package and the name again ("mutex: lost "x": not held: ...", not "... mutex: not held "x": ...").
func (e *opError) writeRest(b *strings.Builder) {
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	for i, c := range e.causes {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if oe, ok := c.(*opError); ok && oe.name == e.name {
			words := oe.sentinel.Error()
			if _, after, found := strings.Cut(words, ": "); found {
				words = after // the package, said already
			}
			b.WriteString(words)
			oe.writeRest(b)
			continue
		}
		b.WriteString(oneLine(c.Error()))
	}
}

func (e *opError) Unwrap() []error { return append([]error{e.sentinel}, e.causes...) }

// ErrorType names the error after its sentinel, for tracing.
func (e *opError) ErrorType() string {
	if s, ok := e.sentinel.(*sentinel); ok {
		return s.typ
	}
	return ""
}

// Permanent marks an error that a [Kind]'s Read returns as one no retry can heal — say, a
// semaphore's capacity that differs from the one stored on the servers. The acquire then stops at
// once, undoes its round, and returns an error matching Misconfigured and err.
func Permanent(err error) error { return &permanent{err} }

type permanent struct{ error }

func (p *permanent) Unwrap() error { return p.error }

// refusal is a node's answer that no retry can heal (see refusalOf), in words.
type refusal struct {
	words string
	err   error // what the server (or the TLS layer) said
	// vague marks a refusal whose reply does not say which command was refused (one inside a
	// script): the probe script can find out (see Quorum.explain).
	vague bool
}

func (r *refusal) Error() string { return r.words + " (" + oneLine(r.err.Error()) + ")" }
func (r *refusal) Unwrap() error { return r.err }

// refusalOf reads a node's failure as a refusal that retrying cannot heal, and says it in words:
// the ACL, the credentials, a command the server does not have, keys the Cluster cannot serve in
// one call, TLS against plain text. It returns nil for what may heal: a timeout, a lost or refused
// connection, a server busy or loading, a replica that may be promoted.
func refusalOf(err error) *refusal {
	var r *refusal
	if errors.As(err, &r) {
		return r
	}
	var tlsErr tls.RecordHeaderError
	if errors.As(err, &tlsErr) {
		return &refusal{words: "the client speaks TLS and the server plain text: connect without TLS, or enable TLS on the server", err: err}
	}
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return &refusal{words: "the client does not trust the server's TLS certificate: give it the CA that signed it (RootCAs, or ca_file= in a rediss URL)", err: err}
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return &refusal{words: "the server refused the TLS handshake (a client certificate it requires?)", err: err}
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		return nil
	}
	msg := reply.Error()
	words, vague := "", false
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"):
		words = "the server refused the user name or password"
	case strings.HasPrefix(msg, "NOAUTH"):
		words = "the server requires authentication and the client gave none"
	case strings.HasPrefix(msg, "NOPERM") && strings.Contains(msg, "key"): // "keys" (7.0), "a key" (7.2)
		words = "the ACL user may not access the library's keys: allow the key prefix as a key pattern (~prefix*)"
	case strings.HasPrefix(msg, "NOPERM") && strings.Contains(msg, "channel"):
		words = "the ACL user may not use the library's wake-up channels: allow the key prefix as a channel pattern (&prefix*)"
	case strings.HasPrefix(msg, "NOPERM"):
		words = "the ACL user lacks a command the library needs"
	case strings.Contains(msg, "can't run this command"):
		words, vague = "the ACL user may not run a command of the library's scripts", true
	case strings.Contains(msg, "can't publish to the channel"):
		words = "the ACL user may not publish to the library's wake-up channels: allow the key prefix as a channel pattern (&prefix*)"
	case strings.HasPrefix(msg, "CROSSSLOT"):
		words = "the keys of one call hash to different Cluster slots"
	case strings.HasPrefix(msg, "ERR DB index is out of range"):
		words = "the server has no such database (the db of the URL or client options)"
	case strings.HasPrefix(msg, "ERR unknown command"):
		words = "the server does not have a command the library needs (renamed or disabled?)"
	default:
		return nil
	}
	return &refusal{words: words, err: err, vague: vague}
}

// connectionDropped reports whether err is a connection the server closed or reset rather than
// answer on: what a plain-text client gets from a server that speaks only TLS (and from one that
// crashed).
func connectionDropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// permanentOf returns the errors among votes that no retry can heal — a kind's [Permanent] or a
// node's refusal — as node errors, a refusal in words (and it puts the words in the vote too).
func (q *Quorum) permanentOf(ctx context.Context, votes []nodeVote) []error {
	var out []error
	for i := range votes {
		err := votes[i].err
		if err == nil {
			continue
		}
		var p *permanent
		if errors.As(err, &p) {
			out = append(out, q.nodeError(ctx, q.nodes[i], err))
			continue
		}
		if r := refusalOf(err); r != nil {
			if _, skipped := err.(*errSkipped); !skipped {
				votes[i].err = r // the server's reply, with what it means
			}
			out = append(out, q.nodeError(ctx, q.nodes[i], votes[i].err))
		}
	}
	return out
}

// isPermanent reports whether err cannot heal by retrying: the quorum is closed, the input is
// invalid, a node refused the request for good ([ErrMisconfigured]), or a kind said so
// ([Permanent]).
func isPermanent(err error) bool {
	var p *permanent
	return errors.Is(err, ErrClosed) || errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrMisconfigured) || errors.As(err, &p)
}

// Join returns errs, nils dropped, as one error whose text lists them on one line, separated by
// "; " (errors.Join puts each on a line of its own). It returns nil when no error is left, and
// the error itself when one is. The result matches each of them.
func Join(errs ...error) error {
	var kept []error
	for _, e := range errs {
		if e != nil {
			kept = append(kept, e)
		}
	}
	switch len(kept) {
	case 0:
		return nil
	case 1:
		return kept[0]
	}
	return joined(kept)
}

type joined []error

func (j joined) Error() string {
	parts := make([]string, len(j))
	for i, e := range j {
		parts[i] = oneLine(e.Error())
	}
	return strings.Join(parts, "; ")
}

func (j joined) Unwrap() []error { return j }

// oneLine folds the newlines of errors.Join (from code that is not ours) into "; ".
func oneLine(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	return strings.ReplaceAll(s, "\n", "; ")
}

// Invalid returns an error of package lease matching ErrInvalidArgument, saying what is wrong
// with arg.
func Invalid(arg, format string, a ...any) error { return leaseErrors.Invalid(arg, format, a...) }
