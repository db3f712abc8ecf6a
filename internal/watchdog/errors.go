package watchdog

import "errors"

var (
	// ErrExpired is the cause of a lease that reached the end of its validity without a
	// successful renewal.
	ErrExpired = errors.New("watchdog: lease expired before it could be renewed")
	// ErrMaxHold is the cause of a lease that reached its max hold time.
	ErrMaxHold = errors.New("watchdog: max hold time reached")
	// ErrClosed is returned by Add after Close, and is the cause of every lease still watched
	// when the watchdog closes.
	ErrClosed = errors.New("watchdog: closed")
)
