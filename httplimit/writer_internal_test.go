package httplimit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ratekit/ratekit"
)

// allWriter is a ResponseWriter with every optional interface the
// middleware's writer preserves; it counts the calls that reach it.
type allWriter struct {
	h                                       http.Header
	code                                    int
	writes, flushes, hijacks, reads, pushes int
}

func (w *allWriter) Header() http.Header         { return w.h }
func (w *allWriter) WriteHeader(code int)        { w.code = code }
func (w *allWriter) Write(b []byte) (int, error) { w.writes++; return len(b), nil }
func (w *allWriter) Flush()                      { w.flushes++ }
func (w *allWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacks++
	return nil, nil, http.ErrNotSupported
}
func (w *allWriter) ReadFrom(r io.Reader) (int64, error) {
	w.reads++
	return io.Copy(io.Discard, r)
}
func (w *allWriter) Push(string, *http.PushOptions) error { w.pushes++; return nil }

// TestWriterVariants checks every variant of the handler's writer: it has
// exactly the optional interfaces its index names, each reaches the
// underlying writer, and every variant is found as the middleware's own.
func TestWriterVariants(t *testing.T) {
	m, err := New(Config{Tiers: []Tier{{Name: "all", Limiter: func(string) ratekit.Limiter { return nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	s := m.pool.Get().(*scratch)
	for k := range 16 {
		u := &allWriter{h: make(http.Header)}
		rec := &recorder{w: u, m: m, s: s, lk: &link{}}
		w := rec.variant(k)
		if outerLink(w) != rec.lk {
			t.Errorf("variant %d: not found as the middleware's writer", k)
		}
		if uw, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok || uw.Unwrap() != u {
			t.Errorf("variant %d: Unwrap does not return the underlying writer", k)
		}
		f, isF := w.(http.Flusher)
		h, isH := w.(http.Hijacker)
		r, isR := w.(io.ReaderFrom)
		p, isP := w.(http.Pusher)
		if isF != (k&optFlusher != 0) || isH != (k&optHijacker != 0) || isR != (k&optReaderFrom != 0) || isP != (k&optPusher != 0) {
			t.Errorf("variant %d: Flusher %v, Hijacker %v, ReaderFrom %v, Pusher %v", k, isF, isH, isR, isP)
			continue
		}
		if isF {
			f.Flush()
		}
		if isH {
			_, _, _ = h.Hijack()
		}
		if isR {
			_, _ = r.ReadFrom(strings.NewReader("body"))
		}
		if isP {
			_ = p.Push("/style.css", nil)
		}
		if got := [4]bool{u.flushes == 1, u.hijacks == 1, u.reads == 1, u.pushes == 1}; got != [4]bool{isF, isH, isR, isP} {
			t.Errorf("variant %d: calls reaching the writer %+v", k, u)
		}
		if (isF || isR) && (u.code != http.StatusOK || rec.code() != http.StatusOK) {
			t.Errorf("variant %d: a Flush or ReadFrom before WriteHeader sent %d, recorded %d; want the implied 200", k, u.code, rec.code())
		}
	}
}

// TestWrapChoosesByWriter checks that wrap picks the variant from the
// writer underneath.
func TestWrapChoosesByWriter(t *testing.T) {
	type onlyFlush struct {
		http.ResponseWriter
		http.Flusher
	}
	type pushFlush struct {
		http.ResponseWriter
		http.Flusher
		http.Pusher
	}
	u := &allWriter{h: make(http.Header)}
	for _, c := range []struct {
		w    http.ResponseWriter
		want int
	}{
		{struct{ http.ResponseWriter }{u}, 0},
		{onlyFlush{u, u}, optFlusher},
		{pushFlush{u, u, u}, optFlusher | optPusher},
		{u, optFlusher | optHijacker | optReaderFrom | optPusher},
	} {
		rec := &recorder{w: c.w}
		if got, want := rec.wrap(), rec.variant(c.want); got != want {
			t.Errorf("%T: wrapped as %T, want %T", c.w, got, want)
		}
	}
}
