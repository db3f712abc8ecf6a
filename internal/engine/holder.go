package engine

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Holder says who holds (or waits for) a claim: the process that made it and when it began.
type Holder struct {
	Token string    // the claim's random token: 128 bits from crypto/rand, hex-encoded
	Host  string    // os.Hostname of the process, with characters outside [A-Za-z0-9._-] replaced by '_'
	PID   int       // its process id
	Since time.Time // when the acquisition began (wall clock, millisecond precision)
	Label string    // the label the acquisition was made with ([Request.Label]), or ""
}

// tokenLen is the length of the random part of a token: 128 bits, hex-encoded.
const tokenLen = 32

// The record stored for a claim is "<token>@<host>:<pid>:<unix ms>", followed by ":<label>" when
// the acquisition has a label (escaped: see escapeLabel). It rides in the value the
// servers store anyway (the lock key, a queue member), so knowing who holds a name costs no
// request of its own, and a GET answers it.
var holderSuffix = func() string {
	host, _ := os.Hostname()
	return "@" + sanitizeHost(host) + ":" + strconv.Itoa(os.Getpid()) + ":"
}()

// procChannel is what follows a name's wake-up channel for this process's waiters: "@host:pid",
// the process part of its tokens. A release publishes to the processes of the waiters it served
// (see lua/queue.lua), so a process hears only the wake-ups of its own waiters, however many
// processes wait for the name.
var procChannel = strings.TrimSuffix(holderSuffix, ":")

// sanitizeHost keeps a host name to characters that cannot break a token: no spaces (wake-up
// messages separate tokens with them) and nothing that needs quoting.
func sanitizeHost(h string) string {
	if h == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, h)
}

// MaxLabel is the longest label an acquisition may carry, in bytes before escaping.
const MaxLabel = 128

// escapeLabel writes a label so that it cannot break a token: letters, digits and ._=,/+- are
// kept, every other byte (spaces, ':', '%', non-ASCII) becomes %XX. The servers store and publish
// tokens; a space would split a wake-up message, a ':' the holder's fields.
func escapeLabel(label string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("._=,/+-", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// newToken returns a fresh holder record: 128 random bits from crypto/rand, hex-encoded, then
// this process's identity, the time and label, already escaped (escapeLabel). One allocation.
func newToken(now time.Time, label string) string {
	var raw [tokenLen / 2]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	var b strings.Builder
	b.Grow(tokenLen + len(holderSuffix) + 15 + len(label))
	var hx [tokenLen]byte
	hex.Encode(hx[:], raw[:])
	b.Write(hx[:])
	b.WriteString(holderSuffix)
	var ms [20]byte
	b.Write(strconv.AppendInt(ms[:0], now.UnixMilli(), 10))
	if label != "" {
		b.WriteByte(':')
		b.WriteString(label)
	}
	return b.String()
}

// ParseHolder reads a value the servers store for a claim — a lock key's value, a queue member —
// and returns its random token and its holder. A reservation made for a waiter ("r:" and the
// waiter's record) reads as that waiter's, and a holder's value marked for its waiters ("q:") as
// the holder's. ok is false when v is not a record of this library.
func ParseHolder(v string) (token string, h Holder, ok bool) {
	if strings.HasPrefix(v, "r:") || strings.HasPrefix(v, "q:") {
		v = v[2:]
	}
	if len(v) < tokenLen+1 || v[tokenLen] != '@' {
		return "", Holder{}, false
	}
	token, rest := v[:tokenLen], v[tokenLen+1:]
	// The host has no ':' (sanitizeHost) and the label is escaped: the fields split cleanly.
	f := strings.Split(rest, ":")
	if len(f) != 3 && len(f) != 4 {
		return "", Holder{}, false
	}
	pid, err1 := strconv.Atoi(f[1])
	ms, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return "", Holder{}, false
	}
	h = Holder{Token: token, Host: f[0], PID: pid, Since: time.UnixMilli(ms)}
	if len(f) == 4 {
		if h.Label, err1 = url.PathUnescape(f[3]); err1 != nil {
			h.Label = f[3]
		}
	}
	return token, h, true
}
