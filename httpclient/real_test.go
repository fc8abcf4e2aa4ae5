package httpclient_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit/httpclient"
)

// TestRealServerReusesConnections runs the transport over a real
// connection to an httptest.Server, to check what in-memory tests cannot:
// the bodies of the 429s it retries are drained and closed, so every
// request reuses one connection. A clock.Mock, moved on by the OnWait hook,
// stands in for the waits, so nothing sleeps.
func TestRealServerReusesConnections(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"title":"Too Many Requests","detail":"`+strings.Repeat("x", 8<<10)+`"}`)
			return
		}
		io.WriteString(w, "ok")
	}))
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	mock := clock.NewMock()
	tr, err := httpclient.New(httpclient.Config{
		Base:   srv.Client().Transport,
		Clock:  mock,
		OnWait: func(_ *http.Request, _ httpclient.Reason, d time.Duration) { mock.Add(d) },
	})
	require.NoError(t, err)
	client := tr.Client()
	for range 20 {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "ok", string(b))
	}
	require.Equal(t, int64(40), n.Load())
	require.Equal(t, int64(1), conns.Load(), "one connection, reused for all 40 requests")
}
