// Package primitive is the shell that packages mutex, rwmutex, semaphore and election share: their
// options, the reporting of the errors nobody else can see, the function run under a lock (Do,
// TryDo), and the sync.Locker adapter. Each primitive is then its claim kind and a page of API.
package primitive

import (
	"context"
	"time"

	"github.com/quorumsync/quorumsync/internal/engine"
	"github.com/quorumsync/quorumsync/lease"
)

// Option configures a primitive. Each primitive declares its With* functions, with docs in its
// own words, over the ones here.
type Option interface{ apply(*Config) }

type optionFunc func(*Config)

func (f optionFunc) apply(c *Config) { f(c) }

// Config is what a primitive's options set.
type Config struct {
	OnError func(error)
	TTL     time.Duration
	Fencing bool
	Label   string
}

// WithErrorHandler sets the primitive's own error handler (nil: the quorum's).
func WithErrorHandler(f func(error)) Option { return optionFunc(func(c *Config) { c.OnError = f }) }

// WithTTL sets the TTL of the primitive's leases (0: the quorum's).
func WithTTL(d time.Duration) Option { return optionFunc(func(c *Config) { c.TTL = d }) }

// WithFencing gives the primitive's exclusive leases fencing tokens.
func WithFencing() Option { return optionFunc(func(c *Config) { c.Fencing = true }) }

// WithLabel sets the label of the primitive's acquisitions.
func WithLabel(label string) Option { return optionFunc(func(c *Config) { c.Label = label }) }

// Shell is the state every primitive holds: its quorum, its name, its options and its package's
// errors.
type Shell struct {
	Q    *engine.Quorum
	Name string
	Cfg  Config
	Errs *engine.Errors
}

// New returns the shell of a primitive of package errs.Package for name on q, with opts applied
// (nil options are ignored: New cannot return an error, and the methods check the rest).
func New(q *lease.Quorum, name string, errs *engine.Errors, opts []Option) Shell {
	s := Shell{Q: (*engine.Quorum)(q), Name: name, Errs: errs}
	if len(opts) > 0 {
		// The options see a Config of their own, which escapes to the heap through their
		// interface: made only when there are options, it is all that escapes, not the Shell.
		var cfg Config
		for _, o := range opts {
			if o != nil {
				o.apply(&cfg)
			}
		}
		s.Cfg = cfg
	}
	return s
}

// Request returns the request every acquire of the primitive starts from, its keys computed once.
func (s *Shell) Request(k engine.Kind) engine.Request {
	r := engine.Request{Kind: k, Name: s.Name, TTL: s.Cfg.TTL, Label: s.Cfg.Label, Primitive: s.Errs.Package, Errors: s.Errs}
	s.Q.Prepare(&r)
	return r
}

// Claim acquires with r, after the check every method shares (see Check).
func (s *Shell) Claim(ctx context.Context, errs *engine.Errors, r *engine.Request) (*engine.Lease, error) {
	if err := s.Check(errs); err != nil {
		return nil, err
	}
	return s.Q.Claim(ctx, r)
}

// Check returns the error of a primitive that is not usable: a zero value, not made by New, or
// one made with a nil quorum. errs are the primitive's package's: a zero value has none in s.
func (s *Shell) Check(errs *engine.Errors) error {
	if s.Q == nil {
		return errs.Invalid(errs.Package, "not made by New, or made with a nil quorum")
	}
	return nil
}

// Report hands err to the primitive's error handler, else to the quorum's (nil-safe).
func (s *Shell) Report(err error) {
	if s.Cfg.OnError != nil {
		s.Cfg.OnError(err)
		return
	}
	s.Q.Report(err)
}

// Do runs fn under l, which a Do or TryDo just acquired, and releases l (see engine.Run).
func Do(ctx context.Context, l *engine.Lease, fn func(context.Context) error, mark func(context.Context) context.Context) error {
	return engine.Run(ctx, l, fn, l.Release, mark)
}
