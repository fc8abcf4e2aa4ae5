package httpclient_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/httpclient"
)

// gate is a base RoundTripper whose requests wait until the test answers
// them, so that the test decides what is in flight.
type gate struct {
	mu       sync.Mutex
	arrivals []time.Time
	waiting  []chan step
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	ch := make(chan step)
	g.mu.Lock()
	g.arrivals = append(g.arrivals, time.Now())
	g.waiting = append(g.waiting, ch)
	g.mu.Unlock()
	st := <-ch
	return (&script{steps: []step{st}}).RoundTrip(r)
}

// answer answers the oldest waiting request with st.
func (g *gate) answer(st step) {
	g.mu.Lock()
	ch := g.waiting[0]
	g.waiting = g.waiting[1:]
	g.mu.Unlock()
	ch <- st
}

func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.arrivals)
}

func quota(status int, kv ...string) step { return step{status: status, header: kv} }

// goGet starts a GET in a goroutine; the returned channel yields its error.
func goGet(t *testing.T, tr http.RoundTripper, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	return done
}

// TestAfterResetAssumesTheLimit: once the reset has passed, the transport
// assumes the whole Limit less what is in flight, and a request beyond it
// waits for a response to say more.
func TestAfterResetAssumesTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{}
		var log waitLog
		tr := newTransport(t, g, httpclient.Config{OnWait: log.hook})
		ctx := context.Background()
		first := goGet(t, tr, ctx)
		synctest.Wait()
		g.answer(quota(200, "X-RateLimit-Limit", "2", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1"))
		require.NoError(t, <-first)

		time.Sleep(time.Second) // the reset passes
		done := []<-chan error{goGet(t, tr, ctx), goGet(t, tr, ctx), goGet(t, tr, ctx)}
		synctest.Wait()
		require.Equal(t, 3, g.count(), "two of the assumed limit of 2 are in flight")
		require.Equal(t, []string{"in-flight 0s"}, log.get())

		g.answer(quota(200, "X-RateLimit-Limit", "2", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1"))
		synctest.Wait()
		require.Equal(t, 3, g.count(), "1 remaining, 1 in flight: still nothing to spare")
		g.answer(quota(200, "X-RateLimit-Limit", "2", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1"))
		synctest.Wait()
		require.Equal(t, 3, g.count(), "now the budget is 0 until the reset")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 4, g.count())
		g.answer(ok)
		for _, d := range done {
			require.NoError(t, <-d)
		}
	})
}

// TestExhaustedWaitEndsAtAResponse: a request waiting for the reset of an
// exhausted budget while another is in flight asks again when that response
// comes, since it may say the quota is back (a window that reset early, a
// raised limit, a probe's answer) rather than sleep to the announced reset.
func TestExhaustedWaitEndsAtAResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{}
		var log waitLog
		tr := newTransport(t, g, httpclient.Config{PaceBelow: -1, OnWait: log.hook})
		ctx := context.Background()
		start := time.Now()
		first := goGet(t, tr, ctx)
		synctest.Wait()
		g.answer(quota(200, "X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "10"))
		require.NoError(t, <-first)

		a := goGet(t, tr, ctx) // the last of the budget: in flight
		synctest.Wait()
		b := goGet(t, tr, ctx) // nothing left: waits for the reset, or a's response
		synctest.Wait()
		require.Equal(t, 2, g.count())
		require.Equal(t, []string{"quota-exhausted 10s"}, log.get())

		time.Sleep(time.Second)
		g.answer(quota(200, "X-RateLimit-Limit", "10", "X-RateLimit-Remaining", "5", "X-RateLimit-Reset", "9"))
		require.NoError(t, <-a)
		synctest.Wait()
		require.Equal(t, 3, g.count(), "b went on a's response, not at the reset")
		require.Equal(t, start.Add(time.Second), g.arrivals[2])
		g.answer(ok)
		require.NoError(t, <-b)
	})
}

// TestProbe: a response with nothing remaining and no reset leaves nothing
// to wait for once nothing is in flight: one request goes as a probe.
func TestProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{quota(200, "RateLimit", `"default";r=0`), quota(200, "RateLimit", `"default";r=0`), ok}}
		tr := newTransport(t, s, httpclient.Config{})
		for range 3 {
			resp, err := get(t, tr)
			require.NoError(t, err)
			resp.Body.Close()
		}
		require.Len(t, s.arrivals, 3)
	})
}

// TestPacingSlotHonoursLaterHoldOff: a request given a pacing slot before a
// 429 arrived does not go at its slot if the 429's Retry-After is later.
func TestPacingSlotHonoursLaterHoldOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{}
		tr := newTransport(t, g, httpclient.Config{MaxAttempts: 1})
		ctx := context.Background()
		start := time.Now()
		first := goGet(t, tr, ctx)
		synctest.Wait()
		// 4 of 100 left, 8 s to the reset: spread 2 s apart.
		g.answer(quota(200, "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "4", "X-RateLimit-Reset", "8"))
		require.NoError(t, <-first)
		a := goGet(t, tr, ctx) // slot at 0 s
		synctest.Wait()
		b := goGet(t, tr, ctx) // slot at 2 s
		synctest.Wait()
		require.Equal(t, 2, g.count())
		time.Sleep(time.Second)
		// The server refuses a, and asks for 5 s.
		g.answer(quota(429, "Retry-After", "5"))
		require.ErrorIs(t, <-a, httpclient.ErrRetriesExhausted)
		synctest.Wait()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		g.answer(ok)
		require.NoError(t, <-b)
		require.Equal(t, start.Add(6*time.Second), g.arrivals[2], "b waited out the Retry-After, not just its slot")
	})
}

// TestPacingSlotCancelled: a request whose context ends while it waits for
// its pacing slot fails with the context's error and gives its slot back.
func TestPacingSlotCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{quota(200, "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "2", "X-RateLimit-Reset", "10"), ok}}
		tr := newTransport(t, s, httpclient.Config{})
		resp, err := get(t, tr)
		require.NoError(t, err)
		resp.Body.Close()
		resp, err = get(t, tr) // slot at 0 s; the next is 5 s later
		require.NoError(t, err)
		resp.Body.Close()

		ctx, cancel := context.WithCancel(context.Background())
		res := goGet(t, tr, ctx)
		time.Sleep(time.Second)
		cancel()
		err = <-res
		require.ErrorIs(t, err, context.Canceled)
		var we *httpclient.WaitError
		require.ErrorAs(t, err, &we)
		require.Equal(t, httpclient.ReasonPacing, we.Reason)
		require.Equal(t, 5*time.Second, we.Wait)

		// The unit came back: the budget of 1 is still there for the next.
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/", nil)
		resp, err = tr.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Len(t, s.arrivals, 3)
	})
}

// TestPacingSlotPastDeadline: a pacing slot after the context's deadline is
// refused at once and takes nothing.
func TestPacingSlotPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: []step{quota(200, "X-RateLimit-Limit", "100", "X-RateLimit-Remaining", "2", "X-RateLimit-Reset", "10"), ok}}
		tr := newTransport(t, s, httpclient.Config{})
		for range 2 {
			resp, err := get(t, tr)
			require.NoError(t, err)
			resp.Body.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := <-goGet(t, tr, ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, start, time.Now())
		resp, err := get(t, tr) // the slot at 5 s is still free
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, start.Add(5*time.Second), s.arrivals[2])
	})
}
