package election

import (
	"errors"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// errs build the package's errors: they say "election: ..." and match package lease's sentinels
// (lease.ErrNotAcquired, lease.ErrLost, ...), which are the ones to match with errors.Is.
var errs = engine.NewErrors("election")

// The errors of this package's own, matched with errors.Is.
var (
	// ErrNoLeader is returned by [Election.Leader] when no candidate leads: none holds the
	// election on a majority of the nodes.
	ErrNoLeader = errors.New("election: no leader")
	// ErrNotLeader is returned by [Election.Resign] when the Election does not lead: it never won,
	// or resigned already.
	ErrNotLeader = errors.New("election: resign while not leading")
	// ErrCampaigning is returned by [Election.Campaign] on an Election that leads or campaigns
	// already: one Election is one candidate. Resign first, or use another Election.
	ErrCampaigning = errors.New("election: already leading or campaigning")
)
