package lease

import (
	"errors"
	"fmt"
)

var (
	// ErrNotAcquired reports that a quorum was not reached: the name is held elsewhere, too few
	// nodes answered, or the ctx ended first (then the error also matches the ctx's error).
	ErrNotAcquired = errors.New("lease: not acquired")
	// ErrNotHeld reports that a release or renewal found the lease gone (expired, or taken by
	// another holder after it expired) on too many nodes.
	ErrNotHeld = errors.New("lease: not held")
	// ErrLost is matched by [Lease.Err] and by a release once the lease was lost: it expired before
	// it could be renewed, it was found gone on the servers, it reached its max hold time, or its
	// quorum was closed. The error also carries the cause.
	ErrLost = errors.New("lease: lost")
	// ErrReleased is returned by a second [Lease.Release], and by [Lease.Err] after a release.
	ErrReleased = errors.New("lease: already released")
	// ErrClosed reports a call on a closed [Quorum].
	ErrClosed = errors.New("lease: quorum closed")
	// ErrInvalidArgument reports bad input. The error names the argument.
	ErrInvalidArgument = errors.New("lease: invalid argument")
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
