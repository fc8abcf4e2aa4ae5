package httpclient

import "time"

// Hosts returns how many hosts' pacing states t keeps, for tests of the
// MaxHosts bound.
func (t *Transport) Hosts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.hosts)
}

// TestHost exposes a host's pacing decisions to the fuzz test, which drives
// it beside the reference model in internal/model.
type TestHost struct{ h *host }

func NewTestHost(pace int) *TestHost { return &TestHost{h: &host{pace: pace}} }

func (t *TestHost) Admit(now time.Time, maxWait time.Duration) (admitted bool, epoch uint64, wait time.Duration, reason Reason, slot, next time.Time) {
	v := t.h.admit(now, maxWait)
	return v.admitted, v.epoch, v.wait, v.reason, v.slot, v.next
}

func (t *TestHost) Send(now time.Time) (time.Duration, uint64) { return t.h.send(now) }
func (t *TestHost) Cancel(slot, next time.Time)                { t.h.cancel(slot, next) }
func (t *TestHost) Record(sent uint64, now time.Time, holdOff time.Duration, q Quota, ok bool) {
	t.h.record(sent, now, holdOff, q, ok)
}

// Merges reports how many times the host merged bounds to stay within its
// cap; the model never does.
func (t *TestHost) Merges() int {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	return t.h.merges
}
