package httpclient

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// Header values come from another service, possibly a broken or hostile
// one: every number is bounded here so that no later arithmetic on it can
// overflow, and nothing a header says can panic the transport.
const (
	// maxCount bounds a Limit or Remaining: 2^40 requests where int has 64
	// bits, more than any quota, and 2^24 (16,777,216) where it has 32, so
	// that count*100 (the PaceBelow test) stays below 2^31 there. A larger
	// count saturates, which only spreads requests sooner.
	maxCount = 1 << (24 + 16*(^uint(0)>>63))
	// maxSeconds is the most whole seconds a time.Duration holds (about 292
	// years). Longer delays saturate at maxDuration.
	maxSeconds  = int64(math.MaxInt64 / int64(time.Second))
	maxDuration = time.Duration(math.MaxInt64)

	// The magnitude thresholds of a numeric reset (see ParseQuotas).
	unixSecondsFrom = 1_000_000_000     // 2001-09-09T01:46:40Z
	unixMillisFrom  = 1_000_000_000_000 // the same instant in milliseconds
)

func clampCount(n int64) int {
	if n > maxCount {
		return maxCount
	}
	return int(n)
}

// secondsDuration converts non-negative whole seconds, saturating.
func secondsDuration(n int64) time.Duration {
	if n > maxSeconds {
		return maxDuration
	}
	return time.Duration(n) * time.Second
}

// firstElement returns the part of a header value before any list (",") or
// parameter (";") separator, trimmed: "100, 100;w=60" (draft-03) is 100.
func firstElement(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == ',' || v[i] == ';' {
			v = v[:i]
			break
		}
	}
	return strings.TrimSpace(v)
}

// parseCount parses a non-negative decimal count, saturating at maxCount.
func parseCount(v string) (int, bool) {
	v = firstElement(v)
	if v == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxCount {
			n = n*10 + int64(c-'0')
		}
	}
	return clampCount(n), true
}

// parseDecimal parses "123" or "123.456" into whole units and nanoseconds
// (the fraction scaled to 9 digits, further digits dropped). The whole part
// saturates at math.MaxInt64/10 rather than overflowing.
func parseDecimal(v string) (whole, nanos int64, ok bool) {
	i := 0
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		if whole < math.MaxInt64/100 {
			whole = whole*10 + int64(v[i]-'0')
		}
	}
	if i == 0 {
		return 0, 0, false
	}
	if i == len(v) {
		return whole, 0, true
	}
	if v[i] != '.' || i+1 == len(v) {
		return 0, 0, false
	}
	scale := int64(100_000_000)
	for i++; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		nanos += int64(c-'0') * scale
		scale /= 10
	}
	return whole, nanos, true
}

// parseSeconds parses delta seconds, whole or decimal, saturating.
func parseSeconds(v string) (time.Duration, bool) {
	whole, nanos, ok := parseDecimal(v)
	if !ok {
		return 0, false
	}
	if whole > (math.MaxInt64-nanos)/int64(time.Second) {
		return maxDuration, true
	}
	return time.Duration(whole)*time.Second + time.Duration(nanos), true
}

// parseReset reads a reset by its shape (see ParseQuotas): delta seconds, a
// Unix time in seconds or milliseconds, an RFC 3339 time or an HTTP-date.
// Absolute times become delays against reference(); the past is 0.
func parseReset(v string, reference func() time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if whole, nanos, ok := parseDecimal(firstElement(v)); ok {
		switch {
		case whole < unixSecondsFrom:
			return time.Duration(whole)*time.Second + time.Duration(nanos), true
		case whole < unixMillisFrom:
			return untilAbs(time.Unix(whole, nanos), reference), true
		default:
			// Milliseconds; a fraction of a millisecond is dropped. time.Unix
			// accepts any int64 and Time.Sub saturates, so a huge value is a
			// huge delay, never an overflow.
			return untilAbs(time.Unix(whole/1000, (whole%1000)*int64(time.Millisecond)), reference), true
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return untilAbs(t, reference), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return untilAbs(t, reference), true
	}
	return 0, false
}

func untilAbs(t time.Time, reference func() time.Time) time.Duration {
	return max(t.Sub(reference()), 0)
}
