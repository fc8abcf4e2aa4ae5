package httpclient

import (
	"time"

	"github.com/benbjohnson/clock"
)

// MaxCount is the bound on a header's counts, which the reference model
// shares.
const MaxCount = maxCount

// Hosts returns how many hosts' pacing states t keeps, for tests of the
// MaxHosts bound.
func (t *Transport) Hosts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nhosts
}

// TestHost exposes a host's pacing decisions to the fuzz test, which drives
// it beside the reference model in internal/model.
type TestHost struct{ h *host }

func NewTestHost(pace int) *TestHost { return &TestHost{h: &host{pace: pace, clk: clock.NewMock()}} }

// Admit returns admit's verdict at now; a paced request is pending until
// Send or Cancel.
func (t *TestHost) Admit(now time.Time) (admitted, paced bool, epoch uint64, wait time.Duration, reason Reason) {
	v := t.h.admit(now)
	return v.admitted, v.paced, v.epoch, v.wait, v.reason
}

func (t *TestHost) Send(now time.Time) (time.Duration, uint64) { return t.h.send(now) }
func (t *TestHost) Cancel()                                    { t.h.cancel() }
func (t *TestHost) Record(sent uint64, now time.Time, holdOff time.Duration, q Quota, ok bool) {
	t.h.record(sent, now, holdOff, q, ok)
}

// Interval returns the pacer's interval (0 if there is no pacer).
func (t *TestHost) Interval() time.Duration {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	return t.h.interval
}

// Merges reports how many times the host merged bounds to stay within its
// cap; the model never does.
func (t *TestHost) Merges() int {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	return t.h.merges
}
