package watchdog

import "github.com/quorumsync/quorumsync/internal/watchdog"

var (
	// ErrExpired is the cause of a lease that reached the end of its validity without a
	// successful renewal.
	ErrExpired = watchdog.ErrExpired
	// ErrMaxHold is the cause of a lease that reached its max hold time (lease.WithMaxHold).
	ErrMaxHold = watchdog.ErrMaxHold
)
