package httplimit

import (
	"crypto/sha256"
	"encoding/base64"
)

// MaxKeyLen is the longest key, in bytes, that the middleware hands to a
// Tier's or the FailureTier's Limiter as it is. A longer key (a JWT, a
// 256 KiB token sent to exhaust memory) is handed over as its digest
// instead (see StoreKey), so a keyed store holds at most MaxKeyLen bytes of
// key per entry whatever clients send, and MaxKeys bounds its memory, not
// only its count.
const MaxKeyLen = 128

// digestPrefix starts the stored form of a long key.
const digestPrefix = "sha256:"

// StoreKey returns the form in which the middleware hands key to a Tier's
// Limiter, and reports it in TierDecision.Key and OnLimitReached: key
// itself when it is at most MaxKeyLen bytes, and otherwise "sha256:"
// followed by the unpadded base64url SHA-256 of key (50 bytes). Use it to
// find a key's limiter in a keyed store, e.g. to Delete a revoked token's.
//
// The digest is not keyed: it is the same in every process, so a long
// key's state survives a restart (persist) and is shared by a fleet
// (redisstore); SHA-256's collision resistance keeps two keys from sharing
// a limit. A key that starts with "sha256:" is digested whatever its
// length, so no client can send a key that reads as the digest of another.
// It allocates only for keys it digests.
func StoreKey(key string) string {
	if len(key) <= MaxKeyLen && (len(key) < len(digestPrefix) || key[:len(digestPrefix)] != digestPrefix) {
		return key
	}
	return digestKey(key)
}

// digestKey is StoreKey of a key it digests, apart so that StoreKey
// inlines.
func digestKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	b := make([]byte, len(digestPrefix)+base64.RawURLEncoding.EncodedLen(len(sum)))
	copy(b, digestPrefix)
	base64.RawURLEncoding.Encode(b[len(digestPrefix):], sum[:])
	return string(b)
}
