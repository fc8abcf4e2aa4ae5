package redisstore

import (
	"context"
	"runtime"
	"sync"
	"time"
	"weak"

	"github.com/benbjohnson/clock"
)

// sweeperControl is shared by a Local and its background sweeper, as
// ratekit.Keyed's is: the goroutine holds it and a weak pointer to the
// Local, never a strong one between sweeps, so that a Local dropped
// without Close is collected and a cleanup attached to it stops the
// goroutine.
type sweeperControl struct {
	once sync.Once
	stop chan struct{} // closed to stop the sweeper
	done chan struct{} // closed by the sweeper when it returns
}

func (c *sweeperControl) halt() { c.once.Do(func() { close(c.stop) }) }

// startSweeper starts q's background sweeper, ticking every interval on
// the configured Clock.
func (q *Local) startSweeper(interval time.Duration) {
	c := &sweeperControl{stop: make(chan struct{}), done: make(chan struct{})}
	q.sweeper = c
	clk, injected := q.cfg.Clock, true
	if clk == nil {
		clk, injected = clock.New(), false
	}
	go runSweeper(weak.Make(q), c, clk.Ticker(interval), clk, injected, q.cfg.OnSweep)
	runtime.AddCleanup(q, (*sweeperControl).halt, c)
}

// runSweeper is the sweeper's goroutine. It takes no context: a sweep's
// round trips use a background one, since a sweep that Close stops ends
// between keys rather than mid-refund (a refund cut short would forfeit
// the lease's units).
func runSweeper(wq weak.Pointer[Local], c *sweeperControl, ticker *clock.Ticker, clk clock.Clock, injected bool, onSweep func(int, error)) {
	defer close(c.done)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C:
		}
		n, ok, err := sweepOnce(wq, c, clk, injected)
		if !ok {
			return
		}
		if onSweep != nil {
			onSweep(n, err)
		}
	}
}

// sweepOnce is one background sweep of the Local behind wq, whose strong
// pointer lives only as long as the sweep. ok is false once the Local has
// been collected.
func sweepOnce(wq weak.Pointer[Local], c *sweeperControl, clk clock.Clock, injected bool) (n int, ok bool, err error) {
	q := wq.Value()
	if q == nil {
		return 0, false, nil
	}
	t, now := int64(0), ""
	if injected {
		at := clk.Now()
		t, now = at.UnixMicro()*1000, micros(at)
	} else {
		now, t = q.stamp(when{})
	}
	n, err = q.sweep(context.Background(), t, now, false, c.stop)
	return n, true, err
}

// stopSweeper stops q's background sweeper, if any, and waits until it
// has returned or ctx ends.
func (q *Local) stopSweeper(ctx context.Context) error {
	c := q.sweeper
	if c == nil {
		return nil
	}
	c.halt()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
