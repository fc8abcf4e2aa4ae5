package httplimit_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit/httplimit"
)

// hijackMiddleware is a per-IP rate tier and a concurrency tier, the
// limits a websocket endpoint would have.
func hijackMiddleware(t *testing.T, conc httplimit.Tier) *httplimit.Middleware {
	ipKey, _ := httplimit.ClientIP(httplimit.IPConfig{})
	return mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{
			{Name: "ip", Key: ipKey, Limiter: httplimit.Shared(newWindow("ip", 10, time.Minute))},
			conc,
		},
		Headers: httplimit.XRateLimit | httplimit.IETF,
		Clock:   mockAt(t0),
	})
}

// TestHijackThroughMiddleware upgrades a connection the way a websocket
// library does: w.(http.Hijacker), a 101 written on the raw connection,
// then an echo. Behind the middleware the handler's writer must still be
// a Hijacker, and the concurrency unit is held while the connection is
// served and given back when the handler returns.
func TestHijackThroughMiddleware(t *testing.T) {
	conc := newConc(t, 1)
	held := make(chan int, 1)
	h := hijackMiddleware(t, httplimit.Tier{Name: "conc", Limiter: httplimit.Shared(conc)}).Wrap(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hj, ok := w.(http.Hijacker)
			if !ok {
				http.Error(w, "not a Hijacker", http.StatusInternalServerError)
				return
			}
			held <- conc.Peek(t0, 0).Remaining
			conn, brw, err := hj.Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer conn.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			line, err := brw.ReadString('\n')
			if err != nil {
				t.Errorf("read on the hijacked connection: %v", err)
				return
			}
			_, _ = brw.WriteString(strings.ToUpper(line))
			_ = brw.Flush()
		}))
	served := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		served <- struct{}{} // the middleware has settled
	}))
	defer srv.Close()
	for i := range 2 {
		// The second upgrade finds the unit free only if the first one's
		// handler gave it back when it returned.
		if got := echoUpgrade(t, srv.Listener.Addr().String(), held); got != 0 {
			t.Errorf("upgrade %d: concurrency units left while the connection is served: %d, want 0", i, got)
		}
		<-served
	}
}

// echoUpgrade upgrades a connection to addr, checks the echo through it,
// and returns what the handler reported on held.
func echoUpgrade(t *testing.T, addr string, held <-chan int) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %q, want 101", resp.StatusCode, body)
	}
	_, _ = io.WriteString(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HELLO\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
	_, _ = io.ReadAll(br) // until the handler closes the connection
	return <-held
}

// TestFlushThroughMiddleware streams a response: the handler's writer is
// an http.Flusher behind the middleware, and a flushed part reaches the
// client while the handler is still running (the handler waits for the
// client to have read it).
func TestFlushThroughMiddleware(t *testing.T) {
	clientRead := make(chan struct{})
	h := hijackMiddleware(t, httplimit.Tier{Name: "conc", Limiter: httplimit.Shared(newConc(t, 5))}).Wrap(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, ok := w.(http.Flusher)
			if !ok {
				http.Error(w, "not a Flusher", http.StatusInternalServerError)
				return
			}
			if _, ok := w.(io.ReaderFrom); !ok {
				t.Error("the handler's writer lost net/http's io.ReaderFrom")
			}
			_, _ = io.WriteString(w, "event: one\n")
			f.Flush()
			select {
			case <-clientRead:
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "event: two\n")
		}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()
	client.Timeout = time.Minute // a guard against a hang, not a timing assertion
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "" {
		t.Error("no rate-limit headers on the streamed response")
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "event: one\n" {
		t.Fatalf("first part %q, %v", first, err)
	}
	close(clientRead)
	rest, _ := io.ReadAll(br)
	if string(rest) != "event: two\n" {
		t.Errorf("rest %q", rest)
	}
}

// TestHTTP2WriterInterfaces checks that over HTTP/2 the handler's writer is
// a Pusher and a Flusher, and not a Hijacker, as net/http's own is.
func TestHTTP2WriterInterfaces(t *testing.T) {
	h := hijackMiddleware(t, httplimit.Tier{Name: "conc", Limiter: httplimit.Shared(newConc(t, 5))}).Wrap(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, p := w.(http.Pusher)
			_, f := w.(http.Flusher)
			_, hj := w.(http.Hijacker)
			if !p || !f || hj || r.ProtoMajor != 2 {
				t.Errorf("HTTP/%d: Pusher %v, Flusher %v, Hijacker %v; want HTTP/2 true, true, false", r.ProtoMajor, p, f, hj)
			}
		}))
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over HTTP/%d", resp.ProtoMajor)
	}
}
