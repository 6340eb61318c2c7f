package commands

import (
	"net"
	"testing"
	"time"
)

// Past the free failures an address's attempts are spaced, and refused once the queue is
// longer than throttleMaxWait; a user's attempts are slowed but never queued or refused.
func TestThrottle(t *testing.T) {
	th := throttle{free: 5}
	now := time.Unix(1_000_000, 0)
	for range 5 {
		if w, refused, _ := th.wait("10.0.0.1", "admin.bob", now); w != 0 || refused {
			t.Fatalf("a free attempt waited %v (refused %v)", w, refused)
		}
		th.failed("10.0.0.1", "admin.bob", true, now)
	}
	th.failed("10.0.0.1", "admin.bob", true, now)
	var last time.Duration
	refusedOnce := false
	for range 50 {
		w, refused, keys := th.wait("10.0.0.1", "", now)
		if refused {
			refusedOnce = true
			continue
		}
		if len(keys) == 0 || keys[0] != "address" || w < last {
			t.Fatalf("attempt waited %v after %v, keys %v", w, last, keys)
		}
		last = w
	}
	if !refusedOnce || last > throttleMaxWait {
		t.Errorf("the address queue reached %v without a refusal", last)
	}
	// The same user from another address: slowed by at most throttleUserMax, never refused.
	for range 20 {
		th.failed("10.0.0.1", "admin.bob", true, now)
	}
	w, refused, keys := th.wait("10.9.9.9", "admin.bob", now)
	if refused || w == 0 || w > throttleUserMax || len(keys) != 1 || keys[0] != "user" {
		t.Errorf("the real user from elsewhere: wait %v refused %v keys %v", w, refused, keys)
	}
	// Scores decay: ten minutes later the address is free again.
	if w, refused, _ := th.wait("10.0.0.1", "", now.Add(10*time.Minute+throttleMaxWait)); w != 0 || refused {
		t.Errorf("after ten minutes: wait %v refused %v", w, refused)
	}
}

// Once an address is throttled its failures are sampled: one record a second, with the count
// of failures it stands for.
func TestThrottleSamplesAudit(t *testing.T) {
	th := throttle{free: 5}
	now := time.Unix(2_000_000, 0)
	written, counted := 0, 0
	for i := range 1000 {
		at := now.Add(time.Duration(i) * 10 * time.Millisecond) // 100 failures a second for 10 s
		if ok, n := th.failed("10.0.0.2", "", true, at); ok {
			written++
			counted += max(n, 1)
		}
	}
	// The last second's failures wait for the next record to be counted.
	if written > 20 || counted < 1000-100 {
		t.Errorf("1000 failures in 10 s wrote %d records standing for %d", written, counted)
	}
}

func TestThrottleAddr(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:5555":            "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:99": "2001:db8:1:2::/64",
	} {
		addr, _ := net.ResolveTCPAddr("tcp", in)
		if got := throttleAddr(addr); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
