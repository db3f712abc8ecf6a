package election

import (
	"time"

	"github.com/quorumsync/quorumsync/internal/primitive"
)

// Option configures an [Election]: see [WithTTL] and [WithErrorHandler].
type Option = primitive.Option

// WithErrorHandler sets the function that hears of a lost leadership that no call returns (the
// leader's lease lost between Campaign and Resign; Done and Err say so too), and of an announcement
// no node took. Default: the quorum's error handler (lease.WithErrorHandler).
func WithErrorHandler(f func(error)) Option { return primitive.WithErrorHandler(f) }

// WithTTL sets the TTL of a leader's lease: how long a leader that died (or was cut off) keeps the
// others waiting, at most. Default: the quorum's TTL. The quorum refuses a TTL it cannot serve
// (lease.ErrInvalidArgument, from Campaign).
func WithTTL(d time.Duration) Option { return primitive.WithTTL(d) }
