package httplimit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"unsafe"
)

// recorder is the middleware's side of the ResponseWriter its handler is
// handed: it captures the status code of the response without buffering
// its body, for the FailureTier and Config.Refund, and it is how an inner
// Middleware finds the outer one (see link). It lives in the pooled
// scratch, so it costs no allocation.
//
// The handler is never handed the *recorder itself but one of the rw*
// types below, chosen by wrap for the writer underneath: each is a struct
// holding only the *recorder (so storing it in an http.ResponseWriter does
// not allocate) whose method set adds exactly the optional interfaces of
// that writer among http.Flusher, http.Hijacker, io.ReaderFrom and
// http.Pusher. A handler's w.(http.Hijacker) therefore succeeds behind the
// middleware exactly when it would without it, as httpsnoop's wrappers do.
// Every variant implements Unwrap, so http.ResponseController reaches the
// underlying writer's deadlines, full duplex and the like, and
// io.StringWriter, which falls back to Write when the writer lacks it.
type recorder struct {
	w      http.ResponseWriter
	status int
	m      *Middleware
	s      *scratch
	lk     *link
}

// The optional interfaces wrap preserves, as bits of its variant index.
const (
	optFlusher = 1 << iota
	optHijacker
	optReaderFrom
	optPusher
)

// writerKinds caches kindOf per writer type.
var writerKinds typeCache

// optChain, beside the opt* bits of a writer kind: the writer may lead to
// an outer Middleware (it is a recorder's variant, or implements Unwrap).
const optChain = 1 << 4

// kindOf returns the opt* bits of the optional interfaces w has, and
// optChain if outerLink must look at it.
func kindOf(w http.ResponseWriter) uint8 {
	t := typeWord(unsafe.Pointer(&w))
	if k, ok := writerKinds.find(t); ok {
		return k
	}
	var k uint8
	if _, ok := w.(http.Flusher); ok {
		k |= optFlusher
	}
	if _, ok := w.(http.Hijacker); ok {
		k |= optHijacker
	}
	if _, ok := w.(io.ReaderFrom); ok {
		k |= optReaderFrom
	}
	if _, ok := w.(http.Pusher); ok {
		k |= optPusher
	}
	_, isRec := w.(interface{ rec() *recorder })
	_, unwraps := w.(interface{ Unwrap() http.ResponseWriter })
	if isRec || unwraps {
		k |= optChain
	}
	return writerKinds.add(t, k)
}

// wrap returns the variant of rec that implements the optional interfaces
// of the writer it records.
func (rec *recorder) wrap() http.ResponseWriter {
	return rec.variant(int(kindOf(rec.w) &^ optChain))
}

// variant returns the variant of rec with the optional interfaces of k, a
// set of opt* bits.
func (rec *recorder) variant(k int) http.ResponseWriter {
	switch k {
	case 0:
		return rw{rec}
	case optFlusher:
		return rwF{rec}
	case optHijacker:
		return rwH{rec}
	case optFlusher | optHijacker:
		return rwFH{rec}
	case optReaderFrom:
		return rwR{rec}
	case optFlusher | optReaderFrom:
		return rwFR{rec}
	case optHijacker | optReaderFrom:
		return rwHR{rec}
	case optFlusher | optHijacker | optReaderFrom:
		return rwFHR{rec} // HTTP/1.x: net/http's own writer
	case optPusher:
		return rwP{rec}
	case optFlusher | optPusher:
		return rwFP{rec} // HTTP/2: net/http's own writer
	case optHijacker | optPusher:
		return rwHP{rec}
	case optFlusher | optHijacker | optPusher:
		return rwFHP{rec}
	case optReaderFrom | optPusher:
		return rwRP{rec}
	case optFlusher | optReaderFrom | optPusher:
		return rwFRP{rec}
	case optHijacker | optReaderFrom | optPusher:
		return rwHRP{rec}
	default:
		return rwFHRP{rec}
	}
}

// The variants, named by the optional interfaces they add: F Flusher,
// H Hijacker, R io.ReaderFrom, P Pusher.
type (
	rw     struct{ *recorder }
	rwF    struct{ *recorder }
	rwH    struct{ *recorder }
	rwFH   struct{ *recorder }
	rwR    struct{ *recorder }
	rwFR   struct{ *recorder }
	rwHR   struct{ *recorder }
	rwFHR  struct{ *recorder }
	rwP    struct{ *recorder }
	rwFP   struct{ *recorder }
	rwHP   struct{ *recorder }
	rwFHP  struct{ *recorder }
	rwRP   struct{ *recorder }
	rwFRP  struct{ *recorder }
	rwHRP  struct{ *recorder }
	rwFHRP struct{ *recorder }
)

func (w rwF) Flush()    { w.flush() }
func (w rwFH) Flush()   { w.flush() }
func (w rwFR) Flush()   { w.flush() }
func (w rwFHR) Flush()  { w.flush() }
func (w rwFP) Flush()   { w.flush() }
func (w rwFHP) Flush()  { w.flush() }
func (w rwFRP) Flush()  { w.flush() }
func (w rwFHRP) Flush() { w.flush() }

func (w rwH) Hijack() (net.Conn, *bufio.ReadWriter, error)    { return w.hijack() }
func (w rwFH) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return w.hijack() }
func (w rwHR) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return w.hijack() }
func (w rwFHR) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return w.hijack() }
func (w rwHP) Hijack() (net.Conn, *bufio.ReadWriter, error)   { return w.hijack() }
func (w rwFHP) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return w.hijack() }
func (w rwHRP) Hijack() (net.Conn, *bufio.ReadWriter, error)  { return w.hijack() }
func (w rwFHRP) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijack() }

func (w rwR) ReadFrom(src io.Reader) (int64, error)    { return w.readFrom(src) }
func (w rwFR) ReadFrom(src io.Reader) (int64, error)   { return w.readFrom(src) }
func (w rwHR) ReadFrom(src io.Reader) (int64, error)   { return w.readFrom(src) }
func (w rwFHR) ReadFrom(src io.Reader) (int64, error)  { return w.readFrom(src) }
func (w rwRP) ReadFrom(src io.Reader) (int64, error)   { return w.readFrom(src) }
func (w rwFRP) ReadFrom(src io.Reader) (int64, error)  { return w.readFrom(src) }
func (w rwHRP) ReadFrom(src io.Reader) (int64, error)  { return w.readFrom(src) }
func (w rwFHRP) ReadFrom(src io.Reader) (int64, error) { return w.readFrom(src) }

func (w rwP) Push(target string, o *http.PushOptions) error    { return w.push(target, o) }
func (w rwFP) Push(target string, o *http.PushOptions) error   { return w.push(target, o) }
func (w rwHP) Push(target string, o *http.PushOptions) error   { return w.push(target, o) }
func (w rwFHP) Push(target string, o *http.PushOptions) error  { return w.push(target, o) }
func (w rwRP) Push(target string, o *http.PushOptions) error   { return w.push(target, o) }
func (w rwFRP) Push(target string, o *http.PushOptions) error  { return w.push(target, o) }
func (w rwHRP) Push(target string, o *http.PushOptions) error  { return w.push(target, o) }
func (w rwFHRP) Push(target string, o *http.PushOptions) error { return w.push(target, o) }

// Header returns the underlying writer's header map.
func (rec *recorder) Header() http.Header { return rec.w.Header() }

// WriteHeader records the status and writes it.
func (rec *recorder) WriteHeader(code int) {
	// 1xx informational responses precede the real one; 101 Switching
	// Protocols ends the exchange.
	if rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
		rec.m.reportFailure(rec.w.Header(), rec.s, rec.lk, code)
	}
	rec.w.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.implicitOK()
	return rec.w.Write(b)
}

// WriteString writes s through the underlying writer's WriteString if it
// has one (net/http's does, and copies s without a conversion).
func (rec *recorder) WriteString(s string) (int, error) {
	rec.implicitOK()
	return io.WriteString(rec.w, s)
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.w }

// recorder returns rec: outerLink finds it through any variant.
func (rec *recorder) rec() *recorder { return rec }

// implicitOK records the 200 that a body written before any WriteHeader
// implies, as net/http sends.
func (rec *recorder) implicitOK() {
	if rec.status == 0 {
		rec.WriteHeader(http.StatusOK)
	}
}

func (rec *recorder) flush() {
	rec.implicitOK()
	rec.w.(http.Flusher).Flush()
}

// hijack hands the connection over. The status recorded stays what the
// handler wrote with WriteHeader, if anything (200 otherwise): what it
// writes on the hijacked connection is not seen.
func (rec *recorder) hijack() (net.Conn, *bufio.ReadWriter, error) {
	return rec.w.(http.Hijacker).Hijack()
}

func (rec *recorder) readFrom(src io.Reader) (int64, error) {
	rec.implicitOK()
	return rec.w.(io.ReaderFrom).ReadFrom(src)
}

func (rec *recorder) push(target string, o *http.PushOptions) error {
	return rec.w.(http.Pusher).Push(target, o)
}

// code is the status the handler sent: 200 if it wrote nothing, as net/http
// then sends.
func (rec *recorder) code() int {
	if rec.status == 0 {
		return http.StatusOK
	}
	return rec.status
}

// reportFailure makes a response that will be charged to the FailureTier
// carry the FailureTier's budget (every response carries the budget that
// applies to it): the single-policy headers then describe the FailureTier
// after this failure, and the per-policy ones list it beside the tiers.
func (m *Middleware) reportFailure(h http.Header, s *scratch, lk *link, status int) {
	rep := s.rep
	if rep.fail == nil || !m.pol.failCounts(status) {
		return
	}
	td := &rep.Tiers[len(m.pol.tiers)]
	td.report = true
	s.hdr.undo(h)
	s.hdr.reset()
	m.writeHeaders(&s.hdr, s, &td.Decision, 1, false)
	s.hdr.flush(h, lk.outer != nil)
}
