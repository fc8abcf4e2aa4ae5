package httpclient_test

import (
	"testing"
	"time"

	"github.com/ratekit/ratekit/httpclient"
	"github.com/ratekit/ratekit/internal/model"
)

// FuzzPacing drives the transport's per-host pacing state and the reference
// model with the same operations (time passing, requests admitted, sent,
// cancelled, answered with arbitrary headers) and requires the same
// decisions, as long as the real state has not had to merge bounds to stay
// within its cap (after that it is stricter than the model by design, and
// only the hold-off rule is checked).
func FuzzPacing(f *testing.F) {
	f.Add([]byte{1, 0, 4, 0, 20, 100, 100, 1, 1, 0, 1, 0, 0, 5, 1, 0})
	f.Add([]byte{1, 0, 1, 0, 4, 2, 2, 3, 50, 1, 1, 10, 1, 10, 0, 50, 2, 0, 3, 0, 4, 10, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 1, 0, 1, 0, 4, 0, 5, 10, 5, 1, 4, 0, 0, 10, 200, 1, 1, 0, 0, 200, 1, 0, 5, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		for _, pace := range []int{20, -1, 100} {
			fuzzPacing(t, ops, pace)
		}
	})
}

func fuzzPacing(t *testing.T, ops []byte, pace int) {
	real := httpclient.NewTestHost(pace)
	m := &model.Pacer{Pace: pace, MaxCount: 1 << 40}
	now := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	type slotted struct{ slot, next time.Time }
	var slots []slotted // pending requests' slots and the next after each
	inflight := 0
	arg := func(i int) byte {
		if i < len(ops) {
			return ops[i]
		}
		return 0
	}
	for i := 0; i < len(ops); i++ {
		comparing := real.Merges() == 0
		switch ops[i] % 6 {
		case 0: // time passes
			i++
			now = now.Add(time.Duration(arg(i)) * 37 * time.Millisecond)
		case 1: // a request asks to go
			i++
			maxWait := time.Duration(arg(i)) * 250 * time.Millisecond
			ok, wait, why, slot, next := real.Admit(now, maxWait)
			mok, mwait, mwhy := m.Admit(now, maxWait)
			if ok && now.Before(m.NotBefore) {
				t.Fatalf("op %d: admitted at %v during a hold-off until %v", i, now, m.NotBefore)
			}
			if comparing {
				reason := model.PaceReason("")
				if !ok || wait > 0 {
					reason = model.PaceReason(why.String())
				}
				if ok != mok || wait != mwait || reason != mwhy {
					t.Fatalf("op %d at +%v: admit = %v %v %q, model %v %v %q",
						i, now.Sub(time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)), ok, wait, reason, mok, mwait, mwhy)
				}
			}
			switch {
			case ok && wait > 0:
				if !slot.Equal(now.Add(wait)) {
					t.Fatalf("op %d: slot %v, wait %v from %v", i, slot, wait, now)
				}
				slots = append(slots, slotted{slot, next})
			case ok:
				inflight++
			}
			if ok != mok || (ok && (wait > 0) != (mwait > 0)) {
				return // the two have diverged (after a merge); stop
			}
		case 2: // a pending request's slot comes
			if len(slots) == 0 || now.Before(slots[0].slot) {
				continue
			}
			w, mw := real.Send(now), m.Send(now)
			if comparing && w != mw {
				t.Fatalf("op %d: send = %v, model %v", i, w, mw)
			}
			if (w == 0) != (mw == 0) {
				return
			}
			if w == 0 {
				slots = slots[1:]
				inflight++
			}
		case 3: // a pending request is cancelled
			if len(slots) == 0 {
				continue
			}
			c := slots[len(slots)-1]
			real.Cancel(c.slot, c.next)
			m.Cancel(c.slot, c.next)
			slots = slots[:len(slots)-1]
		case 4: // a response arrives
			if inflight == 0 {
				i += 5
				continue
			}
			holdOff := time.Duration(-1)
			if a := arg(i + 1); a < 200 {
				holdOff = time.Duration(a) * 100 * time.Millisecond
			}
			q := httpclient.Quota{
				Remaining: int(arg(i + 2)),
				Limit:     int(arg(i + 3)),
				Reset:     time.Duration(arg(i+4)) * 100 * time.Millisecond,
			}
			ok := arg(i+5)%2 == 1
			i += 5
			real.Record(now, holdOff, q, ok)
			m.Record(now, holdOff, q.Remaining, q.Limit, q.Reset, ok)
			inflight--
		case 5: // a round trip fails
			if inflight == 0 {
				continue
			}
			real.Record(now, -1, httpclient.Quota{}, false)
			m.Record(now, -1, 0, 0, 0, false)
			inflight--
		}
	}
}
