package persist_test

import (
	"bytes"
	"math"
	"net/netip"
	"slices"
	"testing"

	"github.com/ratekit/ratekit/persist"
)

// roundTrip encodes each key with c, checks it decodes back, and returns
// the encodings.
func roundTrip[K comparable](t *testing.T, c persist.KeyCodec[K], keys ...K) [][]byte {
	t.Helper()
	var encs [][]byte
	for _, k := range keys {
		b := c.AppendKey([]byte("prefix"), k)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("AppendKey(%v) did not append", k)
		}
		b = b[len("prefix"):]
		got, err := c.ParseKey(b)
		if err != nil || got != k {
			t.Errorf("ParseKey(AppendKey(%v)) = %v, %v", k, got, err)
		}
		encs = append(encs, b)
	}
	return encs
}

func TestIntKey(t *testing.T) {
	// Signed keys encode in numeric order, so the file lists them in order.
	encs := roundTrip(t, persist.IntKey[int64]{}, math.MinInt64, -1, 0, 1, math.MaxInt64)
	if !slices.IsSortedFunc(encs, bytes.Compare) {
		t.Errorf("int64 encodings are not in numeric order: %x", encs)
	}
	encs = roundTrip(t, persist.IntKey[uint64]{}, 0, 1, 1<<63, math.MaxUint64)
	if !slices.IsSortedFunc(encs, bytes.Compare) {
		t.Errorf("uint64 encodings are not in numeric order: %x", encs)
	}
	roundTrip(t, persist.IntKey[int8]{}, math.MinInt8, -1, 0, math.MaxInt8)
	roundTrip(t, persist.IntKey[uint16]{}, 0, math.MaxUint16)
	type accountID int32
	roundTrip(t, persist.IntKey[accountID]{}, -5, 7)

	// Out of range or of the wrong length: an error, never a wrapped value.
	wide := persist.IntKey[int64]{}.AppendKey(nil, 1<<40)
	if k, err := (persist.IntKey[int32]{}).ParseKey(wide); err == nil {
		t.Errorf("int32 ParseKey of 2^40 = %d, want an error", k)
	}
	big := persist.IntKey[uint64]{}.AppendKey(nil, 300)
	if k, err := (persist.IntKey[uint8]{}).ParseKey(big); err == nil {
		t.Errorf("uint8 ParseKey of 300 = %d, want an error", k)
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, make([]byte, 9)} {
		if _, err := (persist.IntKey[int]{}).ParseKey(b); err == nil {
			t.Errorf("ParseKey(%x) succeeded", b)
		}
	}
}

func TestStringKey(t *testing.T) {
	roundTrip(t, persist.StringKey{}, "", "acme", "ключ", "\x00\xff")
}

func TestAddrKey(t *testing.T) {
	var addrs []netip.Addr
	for _, s := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "fe80::1%eth0"} {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	roundTrip(t, persist.AddrKey{}, append(addrs, netip.Addr{})...)
	for _, b := range [][]byte{{1, 2, 3}, make([]byte, 5)} {
		if _, err := (persist.AddrKey{}).ParseKey(b); err == nil {
			t.Errorf("ParseKey(%x) succeeded", b)
		}
	}
}
