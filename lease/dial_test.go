package lease_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/quorumsync/quorumsync/internal/redistest"
	"github.com/quorumsync/quorumsync/lease"
	"github.com/quorumsync/quorumsync/mutex"
)

// dial is lease.Dial with the tests' logger, closing the quorum at the end of the test.
func dial(t *testing.T, urls ...string) (*lease.Quorum, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := lease.Dial(ctx, urls, quiet, lease.WithTTL(2*time.Second))
	if err == nil {
		t.Cleanup(func() { _ = q.Close(context.Background()) })
	}
	return q, err
}

// dialPatient is dial with a node timeout long enough that a loaded machine's slow TLS handshake
// still ends in the refusal the test looks for, not in a node that did not answer at start-up
// (which NewQuorum accepts: it may come back).
func dialPatient(t *testing.T, url string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := lease.Dial(ctx, []string{url}, quiet, lease.WithTTL(10*time.Second), lease.WithNodeTimeout(3*time.Second))
	if err == nil {
		_ = q.Close(context.Background())
	}
	return err
}

// lockOnce takes and releases a lock on q, failing the test on error.
func lockOnce(t *testing.T, q *lease.Quorum) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := mutex.New(q, "dialled")
	require.NoError(t, m.Lock(ctx))
	require.NoError(t, m.Unlock(ctx))
}

// Every URL form Dial documents connects, and gives a quorum that locks: plain, with a user and a
// database, a Unix socket, TLS with a CA made for the test, and a Cluster.
func TestDialTakesEveryURLForm(t *testing.T) {
	plain := redistest.Start(t, 3)
	t.Run("redis", func(t *testing.T) {
		var urls []string
		for _, n := range plain {
			urls = append(urls, "redis://"+n.Addr()+"/0")
		}
		q, err := dial(t, urls...)
		require.NoError(t, err)
		lockOnce(t, q)
		q, err = dial(t, plain[0].Addr()) // host:port, as REDIS_ADDRS has it
		require.NoError(t, err)
		lockOnce(t, q)
	})
	t.Run("user and password", func(t *testing.T) {
		setUser(t, plain[:1], "dialer", "on >s3cret", minimalACL)
		q, err := dial(t, "redis://dialer:s3cret@"+plain[0].Addr()+"?dial_timeout=2s")
		require.NoError(t, err)
		lockOnce(t, q)
		_, err = dial(t, "redis://dialer:wrong@"+plain[0].Addr())
		require.ErrorIs(t, err, lease.ErrMisconfigured)
	})
	t.Run("unix", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "redis.sock")
		redistest.Start(t, 1, redistest.WithArgs("--unixsocket", sock, "--unixsocketperm", "700"))
		q, err := dial(t, "unix://"+sock)
		require.NoError(t, err)
		lockOnce(t, q)
	})
	t.Run("rediss", func(t *testing.T) {
		secure := redistest.Start(t, 1, redistest.WithTLS())
		q, err := dial(t, "rediss://"+secure[0].Addr()+"?ca_file="+url.QueryEscape(secure[0].CAFile()))
		require.NoError(t, err)
		lockOnce(t, q)
		// Without the CA, the server's certificate is not trusted: a refusal no retry heals.
		err = dialPatient(t, "rediss://"+secure[0].Addr())
		require.ErrorIs(t, err, lease.ErrMisconfigured)
		// And plain text to the TLS port says what is wrong.
		err = dialPatient(t, "redis://"+secure[0].Addr())
		require.ErrorIs(t, err, lease.ErrMisconfigured)
		assert.Contains(t, err.Error(), "TLS")
		// TLS to a plain-text port is not told apart (the README says so): the server does not
		// answer the handshake, so the node times out as a hung one does.
		plain := redistest.Start(t, 1)
		q, err = lease.Dial(context.Background(), []string{"rediss://" + plain[0].Addr()}, quiet,
			lease.WithTTL(2*time.Second), lease.WithNodeTimeout(250*time.Millisecond))
		require.NoError(t, err, "a node that does not answer at start-up may come back")
		defer q.Close(context.Background())
		_, err = mutex.New(q, "tls-at-plain").TryObtain(context.Background())
		require.ErrorIs(t, err, lease.ErrUnavailable)
		require.ErrorIs(t, err, lease.ErrNodeTimeout)
		require.NotErrorIs(t, err, lease.ErrMisconfigured)
	})
	t.Run("cluster", func(t *testing.T) {
		masters := redistest.StartCluster(t, 3)
		u := "redis+cluster://" + masters[0].Addr() + "?addr=" + masters[1].Addr() + "&addr=" + masters[2].Addr()
		q, err := dial(t, u)
		require.NoError(t, err)
		lockOnce(t, q)
		names, err := q.List(context.Background(), "*")
		require.NoError(t, err)
		assert.Empty(t, names)
		// The same cluster through two seeds is one node, not two of a quorum.
		_, err = dial(t, "redis+cluster://"+masters[0].Addr(), "redis+cluster://"+masters[1].Addr(), plain[0].Addr())
		require.ErrorIs(t, err, lease.ErrInvalidArgument)
		assert.Contains(t, err.Error(), "same Redis Cluster")
	})
}

// A URL Dial cannot use is the caller's mistake, named by its position, password hidden.
func TestDialRefusesBadURLs(t *testing.T) {
	for _, c := range []struct{ url, words string }{
		{"ftp://localhost:6379", "scheme"},
		{"http://localhost:6379", "scheme"},
		{"redis://:hunter2@localhost:6379?no_such_option=1", "no_such_option"},
		{"redis://localhost:6379?ca_file=/x.pem", "rediss"},
		{"rediss://localhost:6379?ca_file=/does/not/exist.pem", "exist.pem"},
		{"redis+nonsense://localhost:6379", "scheme"},
		{"redis+sentinel://localhost:26379", "master_name"},
		// A Sentinel URL's master password is in the query, and so is the Sentinels'.
		{"redis+sentinel://localhost:26379?master_name=m&password=hunter2&sentinel_password=hunter2&bogus=1", "bogus"},
		{"redis://:hunter2@127.0.0.1:notaport", "invalid port"},
		// A '/' or '#' in a password ends the host early: what follows must not be quoted.
		{"redis://:hunter2/x@localhost:6379", "invalid port"},
		{"localhost:6379?no_such_option=1", "localhost:6379?no_such_option=1: "}, // host:port, shown as given
		{"redis://u:hunter2#t@localhost:6379", "invalid port"},
	} {
		t.Run(c.url, func(t *testing.T) {
			_, err := lease.Dial(context.Background(), []string{"redis://127.0.0.1:1", c.url})
			require.ErrorIs(t, err, lease.ErrInvalidArgument)
			assert.Contains(t, err.Error(), "urls[1]")
			assert.Contains(t, err.Error(), c.words)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
	_, err := lease.Dial(context.Background(), nil)
	require.ErrorIs(t, err, lease.ErrInvalidArgument)
}

// A node that accepts the connection and never answers the TLS handshake costs the per-node
// timeout (at least 250ms) per dial, not go-redis's 5 s default dial timeout: Dial and a Lock
// bounded by a 1 s ctx both return well before that.
func TestDialBoundsATLSHandshakeThatNeverEnds(t *testing.T) {
	addr, _ := redistest.Silent(t, "127.0.0.1:0")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	q, err := lease.Dial(ctx, []string{"rediss://" + addr}, quiet, lease.WithTTL(2*time.Second), lease.WithNodeTimeout(200*time.Millisecond))
	require.NoError(t, err, "a node that does not answer is not an error at start-up")
	defer q.Close(context.Background())
	assert.Less(t, time.Since(start), 4*time.Second, "Dial waited for go-redis's 5s dial timeout")
	lctx, lcancel := context.WithTimeout(context.Background(), time.Second)
	defer lcancel()
	start = time.Now()
	err = mutex.New(q, "x").Lock(lctx)
	require.ErrorIs(t, err, lease.ErrUnavailable)
	assert.Less(t, time.Since(start), 3*time.Second, "a Lock bounded by 1s took %v", time.Since(start))
}
