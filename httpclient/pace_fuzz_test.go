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
		for _, pace := range []int{20, 0, 100} {
			fuzzPacing(t, ops, pace)
		}
	})
}

func fuzzPacing(t *testing.T, ops []byte, pace int) {
	real := httpclient.NewTestHost(pace)
	m := &model.Pacer{Pace: pace, MaxCount: httpclient.MaxCount}
	start := time.Date(2026, 3, 18, 13, 1, 7, 0, time.UTC)
	now := start
	pending := 0          // paced requests not yet sent
	var inflight []uint64 // the epochs in-flight requests were sent at
	arg := func(i int) byte {
		if i < len(ops) {
			return ops[i]
		}
		return 0
	}
	// pick removes and returns the in-flight request chosen by a: responses
	// arrive in any order.
	pick := func(a byte) uint64 {
		k := int(a) % len(inflight)
		e := inflight[k]
		inflight = append(inflight[:k], inflight[k+1:]...)
		return e
	}
	for i := 0; i < len(ops); i++ {
		comparing := real.Merges() == 0
		switch ops[i] % 6 {
		case 0: // time passes
			i++
			now = now.Add(time.Duration(arg(i)) * 37 * time.Millisecond)
		case 1: // a request asks to go
			ok, paced, epoch, wait, why := real.Admit(now)
			mok, mpaced, mepoch, mwait, mwhy := m.Admit(now)
			if ok && now.Before(m.NotBefore) {
				t.Fatalf("op %d: admitted at %v during a hold-off until %v", i, now, m.NotBefore)
			}
			if comparing {
				reason := model.PaceReason("")
				if !ok || paced {
					reason = model.PaceReason(why.String())
				}
				if ok != mok || paced != mpaced || epoch != mepoch || wait != mwait || reason != mwhy {
					t.Fatalf("op %d at +%v: admit = %v %v %d %v %q, model %v %v %d %v %q",
						i, now.Sub(start), ok, paced, epoch, wait, reason, mok, mpaced, mepoch, mwait, mwhy)
				}
				if paced && real.Interval() != m.Interval {
					t.Fatalf("op %d: pacer interval %v, model %v", i, real.Interval(), m.Interval)
				}
			}
			if ok != mok || paced != mpaced {
				return // the two have diverged (after a merge); stop
			}
			switch {
			case paced:
				pending++
			case ok:
				inflight = append(inflight, epoch)
			}
		case 2: // a paced request's slot comes
			if pending == 0 {
				continue
			}
			w, e := real.Send(now)
			mw, me := m.Send(now)
			if comparing && (w != mw || e != me) {
				t.Fatalf("op %d: send = %v %d, model %v %d", i, w, e, mw, me)
			}
			if (w == 0) != (mw == 0) {
				return
			}
			if w == 0 {
				pending--
				inflight = append(inflight, e)
			}
		case 3: // a paced request gives up
			if pending == 0 {
				continue
			}
			real.Cancel()
			m.Cancel()
			pending--
		case 4: // a response arrives
			if len(inflight) == 0 {
				i += 6
				continue
			}
			sent := pick(arg(i + 1))
			holdOff := time.Duration(-1)
			if a := arg(i + 2); a < 200 {
				holdOff = time.Duration(a) * 100 * time.Millisecond
			}
			q := httpclient.Quota{
				Remaining: int(arg(i + 3)),
				Limit:     int(arg(i + 4)),
				Reset:     time.Duration(arg(i+5)) * 100 * time.Millisecond,
			}
			ok := arg(i+6)%2 == 1
			i += 6
			real.Record(sent, now, holdOff, q, ok)
			m.Record(sent, now, holdOff, q.Remaining, q.Limit, q.Reset, ok)
		case 5: // a round trip fails
			if len(inflight) == 0 {
				i++
				continue
			}
			sent := pick(arg(i + 1))
			i++
			real.Record(sent, now, -1, httpclient.Quota{}, false)
			m.Record(sent, now, -1, 0, 0, 0, false)
		}
	}
}
