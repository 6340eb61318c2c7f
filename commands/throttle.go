package commands

import (
	"math"
	"net"
	"sync"
	"time"
)

// The login throttle slows repeated authentication failures, by source address and by user,
// without locking the real user out (README "Limits"):
//
//   - Each failure adds one to a score per address (an IPv6 address counts by its /64) and per
//     user; scores halve every throttleHalfLife.
//   - Past Options.LoginFailuresFree (default throttleFree) failures, attempts from an address
//     are served one at a time, spaced by throttleAddrBase doubled per further failure, at most
//     throttleAddrMax apart. An attempt that would wait more than throttleMaxWait is refused at
//     once. (A real user behind the same address as an attacker is slowed with it.)
//   - Past the free failures, attempts for a user wait throttleUserBase doubled per further
//     failure, at most throttleUserMax, but never queue: the real user, from another address,
//     logs in at most throttleUserMax late however hard the user's name is attacked.
//   - Failures of a throttled address are audited as samples: at most one record per address
//     per throttleAuditEvery, carrying the count of failures since the previous record.
const (
	throttleFree       = 30
	throttleHalfLife   = time.Minute
	throttleAddrBase   = 100 * time.Millisecond
	throttleAddrMax    = 5 * time.Second
	throttleUserBase   = 50 * time.Millisecond
	throttleUserMax    = time.Second
	throttleMaxWait    = 2 * time.Second
	throttleAuditEvery = time.Second
	// throttleMaxKeys bounds the memory of the throttle; past it, keys whose score has decayed
	// are forgotten, and if none has, all are.
	throttleMaxKeys = 100_000
)

type throttleEntry struct {
	score float64
	at    time.Time // when score was last decayed
	next  time.Time // the next free attempt slot (addresses)
	// lastAudit and unaudited sample the audit records of a throttled address.
	lastAudit time.Time
	unaudited int
}

func (e *throttleEntry) decay(now time.Time) float64 {
	if !e.at.IsZero() {
		e.score *= math.Exp2(-float64(now.Sub(e.at)) / float64(throttleHalfLife))
	}
	e.at = now
	return e.score
}

// throttle holds the scores; safe for concurrent use.
type throttle struct {
	mu   sync.Mutex
	keys map[string]*throttleEntry
	// free is the number of failures before the throttle slows a key.
	free int
}

func (t *throttle) entry(key string, now time.Time) *throttleEntry {
	if t.keys == nil {
		t.keys = map[string]*throttleEntry{}
	}
	e := t.keys[key]
	if e == nil {
		if len(t.keys) >= throttleMaxKeys {
			for k, old := range t.keys {
				if old.decay(now) < 0.5 && !old.next.After(now) {
					delete(t.keys, k)
				}
			}
			if len(t.keys) >= throttleMaxKeys {
				clear(t.keys)
			}
		}
		e = &throttleEntry{at: now}
		t.keys[key] = e
	}
	return e
}

func (t *throttle) backoff(score float64, base, limit time.Duration) time.Duration {
	over := int(score) - t.free
	if over < 0 {
		return 0
	}
	d := base << min(over, 20)
	return min(d, limit)
}

// wait returns how long an attempt from addr for user must wait, whether it is refused, and
// which keys slowed it ("address", "user"). An empty addr or user is not looked at.
func (t *throttle) wait(addr, user string, now time.Time) (time.Duration, bool, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var keys []string
	var w time.Duration
	if addr != "" {
		a := t.entry("a:"+addr, now)
		if gap := t.backoff(a.decay(now), throttleAddrBase, throttleAddrMax); gap > 0 {
			slot := now
			if a.next.After(slot) {
				slot = a.next
			}
			if slot.Sub(now) > throttleMaxWait {
				return 0, true, []string{"address"}
			}
			a.next = slot.Add(gap)
			w = slot.Sub(now)
			keys = append(keys, "address")
		}
	}
	if user != "" {
		u := t.entry("u:"+user, now)
		if d := t.backoff(u.decay(now), throttleUserBase, throttleUserMax); d > 0 {
			w += d
			keys = append(keys, "user")
		}
	}
	return w, false, keys
}

// failed scores a failure (unless scored is false: a refusal or a mechanism negotiation) and
// reports whether to write its audit record now and the number of failures that record stands
// for (0: an ordinary, unsampled record).
func (t *throttle) failed(addr, user string, scored bool, now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if user != "" && scored {
		u := t.entry("u:"+user, now)
		u.decay(now)
		u.score++
	}
	a := t.entry("a:"+addr, now)
	a.decay(now)
	if scored {
		a.score++
	}
	if int(a.score) <= t.free+1 && a.unaudited == 0 {
		return true, 0
	}
	a.unaudited++
	if now.Sub(a.lastAudit) < throttleAuditEvery {
		return false, 0
	}
	n := a.unaudited
	a.unaudited, a.lastAudit = 0, now
	return true, n
}

// throttleAddr is the address key of a remote address: the IP, or an IPv6 address's /64.
func throttleAddr(remote net.Addr) string {
	host := remote.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}
