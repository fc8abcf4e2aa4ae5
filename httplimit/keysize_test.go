package httplimit_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

// TestKeyMemoryBounded checks that a key's memory is bounded whatever the
// client sends: a thousand distinct 16 KiB Bearer tokens (or short tokens
// padded with 16 KiB of blanks, which a substring would keep alive) leave
// a per-token tier holding a few hundred bytes a key, not 16 KiB. Before,
// keys were stored whole: 256 KiB tokens kept 257 MiB. 16 KiB is 128 times
// MaxKeyLen, and a key kept whole retains 8 times the bound checked here
// (18.6 KB a key), as 256 KiB did at 16 times the cost under -race.
func TestKeyMemoryBounded(t *testing.T) {
	const keys, size = 1000, 16 << 10
	for _, tc := range []struct {
		name string
		key  httplimit.KeyFunc
		hdr  string
		val  func(i int) string
	}{
		{"long Bearer", httplimit.Bearer, "Authorization", func(i int) string {
			return fmt.Sprintf("Bearer %d%s", i, strings.Repeat("x", size))
		}},
		{"padded Bearer", httplimit.Bearer, "Authorization", func(i int) string {
			return "Bearer" + strings.Repeat(" ", size) + fmt.Sprint("tok-", i)
		}},
		{"long Header", httplimit.Header("X-Api-Key"), "X-Api-Key", func(i int) string {
			return strings.Repeat("k", size) + fmt.Sprint(i)
		}},
		{"padded Header", httplimit.Header("X-Api-Key"), "X-Api-Key", func(i int) string {
			return "\t" + fmt.Sprint("key-", i) + strings.Repeat(" ", size)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens := newKeyed(func(string) *window { return newWindow("token", 10, time.Minute) })
			h := mustNew(t, httplimit.Config{
				Tiers: []httplimit.Tier{{Name: "token", Key: tc.key, Limiter: httplimit.Per(tokens.Get)}},
				Clock: mockAt(t0),
			}).Wrap(ok)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range keys {
				if w := serve(h, newReq("192.0.2.1:1", tc.hdr, tc.val(i))); w.Code != http.StatusOK {
					t.Fatalf("request %d: %d", i, w.Code)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if n := tokens.Len(); n != keys {
				t.Fatalf("%d keys, want %d distinct ones", n, keys)
			}
			perKey := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / keys
			if perKey > 2048 {
				t.Errorf("%d bytes retained a key, want at most 2 KiB", perKey)
			}
			for k := range tokens.All() {
				if len(k) > httplimit.MaxKeyLen {
					t.Fatalf("stored key of %d bytes, longer than MaxKeyLen", len(k))
				}
			}
			runtime.KeepAlive(tokens)
		})
	}
}

// TestStoreKey checks the stored form of keys: whole up to MaxKeyLen bytes,
// a SHA-256 digest past it, and never one key's stored form equal to
// another's.
func TestStoreKey(t *testing.T) {
	short := strings.Repeat("a", httplimit.MaxKeyLen)
	if got := httplimit.StoreKey(short); got != short {
		t.Errorf("a key of MaxKeyLen bytes is stored as %q, want itself", got)
	}
	long1, long2 := short+"1", short+"2"
	s1, s2 := httplimit.StoreKey(long1), httplimit.StoreKey(long2)
	if s1 == s2 || !strings.HasPrefix(s1, "sha256:") || len(s1) > httplimit.MaxKeyLen {
		t.Errorf("long keys stored as %q and %q: want distinct sha256: digests", s1, s2)
	}
	if httplimit.StoreKey(long1) != s1 {
		t.Error("StoreKey is not deterministic")
	}
	// A client cannot send a key that reads as the digest of another's.
	if got := httplimit.StoreKey(s1); got == s1 {
		t.Errorf("the raw key %q is stored as itself: it would share the limit of a long key", s1)
	}
	if a := testing.AllocsPerRun(100, func() { httplimit.StoreKey(short) }); a != 0 {
		t.Errorf("StoreKey of a short key: %v allocations, want 0", a)
	}

	// Through the middleware: two long tokens differing in their last byte
	// have separate limits, and the hook sees the stored form.
	tokens := newKeyed(func(string) *window { return newWindow("token", 1, time.Minute) })
	var seen []string
	h := mustNew(t, httplimit.Config{
		Tiers: []httplimit.Tier{{Name: "token", Key: httplimit.Bearer, Limiter: httplimit.Per(tokens.Get)}},
		Clock: mockAt(t0),
		OnDecision: func(_ *http.Request, _ ratekit.Decision, tds []httplimit.TierDecision) {
			seen = append(seen, tds[0].Key)
		},
	}).Wrap(ok)
	for _, tok := range []string{long1, long2, long1} {
		serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer "+tok))
	}
	if got := keysOf(tokens); len(got) != 2 || seen[0] != s1 || seen[1] != s2 {
		t.Errorf("keys %q, hook saw %q; want the digests %q and %q", got, seen, s1, s2)
	}
	if w := serve(h, newReq("192.0.2.1:1", "Authorization", "Bearer "+long2)); w.Code != http.StatusTooManyRequests {
		t.Errorf("second request of a long token: %d, want 429", w.Code)
	}
}
