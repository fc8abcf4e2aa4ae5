// Package core holds the small pieces every ratekit algorithm package shares:
// config and state errors, the versioned header of marshalled state, a
// bounds-checked reader for it, and the default clock; and the retry
// schedule of the two clients, httpclient and grpclimit. It is not API.
package core

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/benbjohnson/clock"

	"github.com/ratekit/ratekit"
)

// Clock returns c, or the real clock when c is nil.
func Clock(c clock.Clock) clock.Clock {
	if c == nil {
		return clock.New()
	}
	return c
}

// Must returns l, made from a Config already validated, which cannot fail:
// a deprecated Template's New.
func Must[L any](l L, err error) L {
	if err != nil {
		panic("ratekit: a validated Config failed: " + err.Error()) // cannot happen
	}
	return l
}

// Invalid returns an error wrapping ratekit.ErrInvalidConfig, formatted as
// "ratekit: invalid config: <pkg>: <detail>".
func Invalid(pkg, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ratekit.ErrInvalidConfig, pkg, fmt.Sprintf(format, args...))
}

// InvalidState returns an error wrapping ratekit.ErrInvalidState.
func InvalidState(pkg, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ratekit.ErrInvalidState, pkg, fmt.Sprintf(format, args...))
}

// Impossible is the Decision for a request that can never be admitted (n < 0
// or n > capacity): denied with RetryAfter Never, the rest describing the
// limiter's current state as the caller computed it.
func Impossible(limit, remaining int, window, resetAfter time.Duration, policy string) ratekit.Decision {
	return ratekit.Decision{
		Limit: limit, Remaining: remaining, Window: window,
		ResetAfter: resetAfter, RetryAfter: ratekit.Never, Policy: policy,
	}
}

// Alg tags marshalled state with the algorithm it belongs to, so that the
// state of one algorithm is never restored into another.
type Alg byte

// The algorithm tags. Never renumber them: they are in files on disk.
const (
	TokenBucket    Alg = 1
	FixedWindow    Alg = 2
	Rolling        Alg = 3
	SlidingLog     Alg = 4
	SlidingCounter Alg = 5
	Concurrency    Alg = 6
)

func (a Alg) String() string {
	switch a {
	case TokenBucket:
		return "tokenbucket"
	case FixedWindow:
		return "fixedwindow"
	case Rolling:
		return "rolling"
	case SlidingLog:
		return "slidingwindow.Log"
	case SlidingCounter:
		return "slidingwindow.Counter"
	case Concurrency:
		return "concurrency"
	}
	return fmt.Sprintf("Alg(%d)", byte(a))
}

// magic opens every marshalled state: "rk".
const magic0, magic1 = 'r', 'k'

// HeaderLen is the length of the header AppendHeader writes.
const HeaderLen = 4

// AppendHeader appends the 4-byte header of a marshalled state: magic "rk",
// the algorithm and the format version.
func AppendHeader(b []byte, alg Alg, version byte) []byte {
	return append(b, magic0, magic1, byte(alg), version)
}

// ParseHeader checks the header of b against alg and version and returns the
// payload after it, or an error wrapping ratekit.ErrInvalidState that says
// what is wrong.
func ParseHeader(b []byte, alg Alg, version byte) ([]byte, error) {
	if len(b) < HeaderLen {
		return nil, InvalidState(alg.String(), "state is %d bytes, too short for a header", len(b))
	}
	if b[0] != magic0 || b[1] != magic1 {
		return nil, InvalidState(alg.String(), "not ratekit state (bad magic %#x %#x)", b[0], b[1])
	}
	if Alg(b[2]) != alg {
		return nil, InvalidState(alg.String(), "state of %s, not %s", Alg(b[2]), alg)
	}
	if b[3] != version {
		return nil, InvalidState(alg.String(), "format version %d, this build reads %d", b[3], version)
	}
	return b[HeaderLen:], nil
}

// ParseHeaders is ParseHeader for an algorithm that reads two format
// versions, v and alt: it returns the payload and whether it is of version
// alt. A header of alg with another version is an error that names both.
func ParseHeaders(b []byte, alg Alg, v, alt byte) (payload []byte, isAlt bool, err error) {
	if payload, err = ParseHeader(b, alg, v); err == nil {
		return payload, false, nil
	}
	if payload, err2 := ParseHeader(b, alg, alt); err2 == nil {
		return payload, true, nil
	}
	if len(b) >= HeaderLen {
		if _, err3 := ParseHeader(b, alg, b[3]); err3 == nil {
			err = InvalidState(alg.String(), "format version %d, this build reads %d and %d", b[3], v, alt)
		}
	}
	return nil, false, err
}

// MaxUnixSec is the last Unix second time.Time holds: it counts seconds
// from the year 1 in an int64, and the year 1 is 62,135,596,800 s before
// 1970.
const MaxUnixSec = math.MaxInt64 - 62_135_596_800

// Reader decodes the varint fields of a payload. The first error sticks: read
// every field, then check Err once; values read after an error are zero.
type Reader struct {
	alg Alg
	b   []byte
	err error
}

// NewReader returns a Reader over payload.
func NewReader(alg Alg, payload []byte) *Reader { return &Reader{alg: alg, b: payload} }

// Int64 reads a signed varint.
func (r *Reader) Int64() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = InvalidState(r.alg.String(), "truncated or malformed field")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Uint64 reads an unsigned varint.
func (r *Reader) Uint64() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = InvalidState(r.alg.String(), "truncated or malformed field")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Unix reads a wall-clock instant as a varint of Unix seconds and a
// uvarint of nanoseconds, failing if either is out of time.Time's range;
// what names the instant in the error.
func (r *Reader) Unix(what string) time.Time {
	sec, nsec := r.Int64(), r.Uint64()
	switch {
	case nsec >= uint64(time.Second):
		r.Fail("%s's nanoseconds %d are not below a second", what, nsec)
	case sec > MaxUnixSec:
		r.Fail("%s %d s is past the last instant time.Time holds", what, sec)
	}
	return time.Unix(sec, int64(nsec))
}

// Fail records err (if no error is recorded yet), for checks of decoded values.
func (r *Reader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = InvalidState(r.alg.String(), format, args...)
	}
}

// Failed reports whether a read has failed so far. Unlike Err it does not
// count unread bytes, so it can be checked mid-payload, before a decoded
// count is trusted to bound a loop or an allocation.
func (r *Reader) Failed() bool { return r.err != nil }

// Err returns the first error, or an error if bytes are left unread.
func (r *Reader) Err() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = InvalidState(r.alg.String(), "%d trailing bytes", len(r.b))
	}
	return r.err
}
