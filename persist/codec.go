package persist

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// KeyCodec turns the keys of a keyed set into the bytes that name their
// saved state in the store file, and back. StringKey, IntKey and AddrKey
// are ready-made; a struct key needs its own (append its fields, with their
// lengths where they vary).
//
// Different keys must encode to different bytes, and ParseKey must return
// the key that AppendKey encoded. ParseKey should reject bytes AppendKey
// never makes with an error (the state saved under them is skipped); if it
// accepts two encodings of one key, only one of them is kept up to date.
// ParseKey must not keep b, which points into the file's memory map.
// Encoded keys longer than 32 KiB (bbolt's limit, less a byte) are not
// saved; checkpoints report them.
type KeyCodec[K any] interface {
	// AppendKey appends key's encoding to b and returns the result.
	AppendKey(b []byte, key K) []byte
	// ParseKey decodes an encoding AppendKey made.
	ParseKey(b []byte) (K, error)
}

// StringKey is the KeyCodec of string keys: the key's bytes as they are.
type StringKey struct{}

// AppendKey appends key's bytes.
func (StringKey) AppendKey(b []byte, key string) []byte { return append(b, key...) }

// ParseKey returns b as a string. It accepts any bytes.
func (StringKey) ParseKey(b []byte) (string, error) { return string(b), nil }

// integer is the key types IntKey encodes.
type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// IntKey is the KeyCodec of integer keys (a user or account id, of any
// integer type): 8 big-endian bytes, signed values offset by 2^63, so that
// the file orders keys as numbers. ParseKey rejects other lengths and
// values out of K's range.
type IntKey[K integer] struct{}

// signed reports whether K is a signed integer type.
func signed[K integer]() bool {
	z := K(0)
	z--
	return z < 0
}

// AppendKey appends key's 8 bytes.
func (IntKey[K]) AppendKey(b []byte, key K) []byte {
	u := uint64(key)
	if signed[K]() {
		u = uint64(int64(key)) ^ 1<<63
	}
	return binary.BigEndian.AppendUint64(b, u)
}

// ParseKey decodes 8 bytes that AppendKey made.
func (IntKey[K]) ParseKey(b []byte) (K, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("persist: IntKey of %d bytes, want 8", len(b))
	}
	u := binary.BigEndian.Uint64(b)
	if signed[K]() {
		v := int64(u ^ 1<<63)
		if k := K(v); int64(k) == v {
			return k, nil
		}
		return 0, fmt.Errorf("persist: IntKey %d out of the key type's range", v)
	}
	if k := K(u); uint64(k) == u {
		return k, nil
	}
	return 0, fmt.Errorf("persist: IntKey %d out of the key type's range", u)
}

// AddrKey is the KeyCodec of netip.Addr keys (per-IP limits), in
// netip.Addr's binary encoding: 4 bytes for IPv4, 16 and the zone for IPv6,
// none for the zero Addr.
type AddrKey struct{}

// AppendKey appends key's binary encoding.
func (AddrKey) AppendKey(b []byte, key netip.Addr) []byte {
	b, _ = key.AppendBinary(b) // never fails
	return b
}

// ParseKey decodes an address that AppendKey encoded.
func (AddrKey) ParseKey(b []byte) (netip.Addr, error) {
	var a netip.Addr
	err := a.UnmarshalBinary(b)
	return a, err
}
