package lease

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumsync/quorumsync/internal/engine"
)

// Dial connects to the nodes the URLs name, one node per URL, and returns a quorum over them
// (see [NewQuorum], which it calls with opts). The quorum owns the clients: [Quorum.Close] closes
// them. The forms, as go-redis parses them:
//
//	redis://[user:password@]host:port[/db][?option=value...]    a node (host:port alone means the same)
//	rediss://...                                                  a node over TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N]             a node on a Unix socket
//	redis+sentinel://[user:password@]sentinel:26379?master_name=NAME[&addr=sentinel2:26379...]
//	                                                              a master that Sentinels fail over
//	redis+cluster://[user:password@]host:port[?addr=host2:port2...]
//	                                                              a Redis Cluster, as one node
//
// (rediss+sentinel and rediss+cluster use TLS; a redis:// URL with master_name is a Sentinel
// one.) The query sets go-redis's options by their snake-case names (dial_timeout=2s,
// pool_size=20, skip_verify=true, ...), and, for TLS, three of Dial's own: ca_file (a PEM file
// of the CA to trust instead of the system's), cert_file and key_file (a client certificate). Dial then sets what the quorum needs:
// ContextTimeoutEnabled, so that the per-node timeout bounds every call; and DialerRetries=1 and
// MaxRetries=-1 (a Cluster URL keeps its retries: they follow MOVED redirects), so that a node
// that refuses connections fails at once instead of eating the per-node timeout in retries, as
// NewQuorum's start-up warning recommends; and DialTimeout to the per-node timeout (at least
// 250ms), since a dial, a TLS handshake above all, is bounded by it rather than by the call's
// context. A URL may set them where go-redis's parser takes them (dial_timeout and max_retries
// everywhere; dialer_retries in the Sentinel and Cluster forms). The read and write timeouts keep
// go-redis's defaults: each call is bounded by its context.
//
// A URL that cannot be parsed is an error matching [ErrInvalidArgument] that says which.
func Dial(ctx context.Context, urls []string, opts ...Option) (*Quorum, error) {
	if len(urls) == 0 {
		return nil, engine.Invalid("urls", "no URL")
	}
	clients := make([]redis.UniversalClient, 0, len(urls))
	closeAll := func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}
	// A dial (a TLS handshake above all) is bounded by the client's DialTimeout, not by the
	// call's context: the per-node timeout is the bound the quorum needs.
	dialTimeout := max(engine.NodeTimeoutOf(opts...), 250*time.Millisecond)
	for i, u := range urls {
		c, err := clientOf(u, dialTimeout)
		if err != nil {
			closeAll()
			return nil, engine.Invalid(fmt.Sprintf("urls[%d]", i), "%s: %v", redact(u), err)
		}
		clients = append(clients, c)
	}
	q, err := engine.NewQuorum(ctx, clients, append(opts, engine.OwnClients())...)
	if err != nil {
		closeAll()
		return nil, err
	}
	return (*Quorum)(q), nil
}

// clientOf makes the client one URL names.
func clientOf(raw string, dialTimeout time.Duration) (redis.UniversalClient, error) {
	if !strings.Contains(raw, "://") {
		raw = "redis://" + raw // host:port
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New(unparsable(err))
	}
	query := u.Query()
	set := func(name string) bool { return query.Has(name) }
	// Our own parameters, which go-redis does not know: the TLS files.
	files := map[string]string{}
	for _, p := range []string{"ca_file", "cert_file", "key_file"} {
		if query.Has(p) {
			files[p] = query.Get(p)
			query.Del(p)
		}
	}
	u.RawQuery = query.Encode()
	scheme, kind, _ := strings.Cut(u.Scheme, "+")
	if kind == "" && query.Has("master_name") {
		kind = "sentinel"
	}
	u.Scheme = scheme
	// settle sets what the quorum needs on the options go-redis parsed (maxRetries nil: leave them).
	settle := func(contextTimeout *bool, dialTO *time.Duration, dialerRetries, maxRetries *int, tc **tls.Config) error {
		*contextTimeout = true
		if !set("dial_timeout") {
			*dialTO = dialTimeout
		}
		if !set("dialer_retries") {
			*dialerRetries = 1
		}
		if maxRetries != nil && !set("max_retries") {
			*maxRetries = -1
		}
		var err error
		*tc, err = withFiles(*tc, files)
		return err
	}
	switch kind {
	case "":
		if scheme != "redis" && scheme != "rediss" && scheme != "unix" {
			return nil, fmt.Errorf("scheme %q: want redis, rediss, unix, redis+sentinel or redis+cluster", u.Scheme)
		}
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, err
		}
		if err := settle(&o.ContextTimeoutEnabled, &o.DialTimeout, &o.DialerRetries, &o.MaxRetries, &o.TLSConfig); err != nil {
			return nil, err
		}
		return redis.NewClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, err
		}
		if o.MasterName == "" {
			return nil, errors.New("a Sentinel URL needs master_name=NAME")
		}
		if err := settle(&o.ContextTimeoutEnabled, &o.DialTimeout, &o.DialerRetries, &o.MaxRetries, &o.TLSConfig); err != nil {
			return nil, err
		}
		return redis.NewFailoverClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, err
		}
		if err := settle(&o.ContextTimeoutEnabled, &o.DialTimeout, &o.DialerRetries, nil, &o.TLSConfig); err != nil {
			return nil, err
		}
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("scheme %q: want redis, rediss, unix, redis+sentinel or redis+cluster", u.Scheme+"+"+kind)
}

// withFiles adds the TLS files a URL names (ca_file: the CA to trust instead of the system's;
// cert_file and key_file: a client certificate) to c, the TLS configuration of a rediss URL.
func withFiles(c *tls.Config, files map[string]string) (*tls.Config, error) {
	if len(files) == 0 {
		return c, nil
	}
	if c == nil {
		return nil, errors.New("ca_file, cert_file and key_file need a rediss URL")
	}
	if f, ok := files["ca_file"]; ok {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", f)
		}
	}
	cert, key := files["cert_file"], files["key_file"]
	if (cert == "") != (key == "") {
		return nil, errors.New("cert_file and key_file go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// redact hides the passwords in a URL.
func redact(raw string) string {
	if !strings.Contains(raw, "://") { // host:port, as clientOf reads it
		return strings.TrimPrefix(redact("redis://"+raw), "redis://")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	// The password of the user info, and any in the query: a Sentinel URL takes the master's
	// there (password=), and its Sentinels' (sentinel_password=).
	query, hidden := u.Query(), false
	for k := range query {
		if strings.Contains(strings.ToLower(k), "password") {
			query[k], hidden = []string{"xxxxx"}, true
		}
	}
	if hidden {
		u.RawQuery = query.Encode()
	}
	return u.Redacted()
}

// unparsable says why url.Parse refused a URL without quoting any of it: a password with a '/' or
// a '#' in it ends the host early, and its tail is then quoted as the bad port.
func unparsable(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "not a URL"
	}
	msg, _, _ := strings.Cut(ue.Err.Error(), `"`)
	return strings.TrimSpace(msg)
}
