package mutex

import (
	"log/slog"
)

// Option configures a [Mutex].
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	onError func(error)
}

// WithErrorHandler sets the function that receives the errors nobody else can see: a lease lost
// while held, and the failures of the [sync.Locker] returned by [Mutex.Locker] (whose methods
// cannot return errors). It is called from the goroutine that saw the error and must not block.
// Default: log at level Error with slog.Default(). A nil f restores the default.
func WithErrorHandler(f func(error)) Option {
	return optionFunc(func(c *config) { c.onError = f })
}

func logError(err error) {
	slog.Default().Error("quorumsync mutex", "err", err)
}
