package httplimit

import (
	"net/http"
)

// recorder captures the status code of a response without buffering its
// body, for the FailureTier and Config.Refund. It is used only when one of
// them is configured.
//
// It implements Unwrap, so http.ResponseController reaches the underlying
// writer's Hijack, SetReadDeadline and the like, and Flush, which handlers
// commonly reach for with a type assertion.
type recorder struct {
	http.ResponseWriter
	status int
	m      *Middleware
	s      *scratch
	lk     *link
}

func (w *recorder) WriteHeader(code int) {
	// 1xx informational responses precede the real one; 101 Switching
	// Protocols ends the exchange.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.m.reportFailure(w.ResponseWriter.Header(), w.s, w.lk, code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer if it can.
func (w *recorder) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the status the handler sent: 200 if it wrote nothing, as net/http
// then sends.
func (w *recorder) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
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
	m.writeHeaders(&s.hdr, s, td.Decision, false)
	s.hdr.flush(h, lk.outer != nil)
}
