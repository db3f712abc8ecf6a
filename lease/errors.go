package lease

import (
	"context"
	"errors"
	"fmt"
)

// sentinel is the type of the package's sentinel errors. Its ErrorType names the error for
// tracing (the error.type attribute of OpenTelemetry), which otherwise sees only fmt's wrapper
// types.
type sentinel struct{ msg, typ string }

func (e *sentinel) Error() string { return e.msg }

// ErrorType returns a stable, low-cardinality name for the error, such as "lease.not_acquired".
func (e *sentinel) ErrorType() string { return e.typ }

var (
	// ErrNotAcquired reports that a quorum was not reached: the name is held elsewhere, too few
	// nodes answered, or the ctx ended first (then the error also matches the ctx's error).
	ErrNotAcquired error = &sentinel{"lease: not acquired", "lease.not_acquired"}
	// ErrNotHeld reports that a release or renewal found the lease gone (expired, or taken by
	// another holder after it expired) on too many nodes.
	ErrNotHeld error = &sentinel{"lease: not held", "lease.not_held"}
	// ErrLost is matched by [Lease.Err] and by a release once the lease was lost: it expired before
	// it could be renewed, it was found gone on the servers, it reached its max hold time, or its
	// quorum was closed. The error also carries the cause.
	ErrLost error = &sentinel{"lease: lost", "lease.lost"}
	// ErrReleased is returned by a second [Lease.Release], and by [Lease.Err] after a release.
	ErrReleased error = &sentinel{"lease: already released", "lease.released"}
	// ErrClosed reports a call on a closed [Quorum].
	ErrClosed error = &sentinel{"lease: quorum closed", "lease.closed"}
	// ErrInvalidArgument reports bad input. The error names the argument.
	ErrInvalidArgument error = &sentinel{"lease: invalid argument", "lease.invalid_argument"}
)

// ArgumentError is the error returned for bad input; it matches [ErrInvalidArgument].
type ArgumentError struct {
	Arg    string // the argument, e.g. "ttl" or "nodes[2]"
	Reason string
}

func (e *ArgumentError) Error() string {
	return fmt.Sprintf("lease: invalid argument %s: %s", e.Arg, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// ErrorType names the error for tracing.
func (e *ArgumentError) ErrorType() string { return "lease.invalid_argument" }

func invalid(arg, format string, a ...any) error {
	return &ArgumentError{Arg: arg, Reason: fmt.Sprintf(format, a...)}
}

// NodeError is the failure of one node in a fan-out. Errors from several nodes are joined with
// errors.Join; use errors.As to get at each.
type NodeError struct {
	Index int    // position of the node in the slice given to NewQuorum
	Addr  string // its address, when known
	Err   error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("lease: node %d (%s): %v", e.Index, e.Addr, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// ErrorType names the error for tracing: "lease.node_timeout" or "lease.node_error".
func (e *NodeError) ErrorType() string {
	var ne interface{ Timeout() bool }
	if errors.Is(e.Err, context.DeadlineExceeded) || errors.As(e.Err, &ne) && ne.Timeout() {
		return "lease.node_timeout"
	}
	return "lease.node_error"
}
