package httplimit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"hash"

	"github.com/ratekit/ratekit/internal/core"
)

// pkLen is how many bytes of the HMAC a partition key keeps: 96 bits tell
// partitions apart without a practical collision among any one client's.
const pkLen = 12

// pkHasher computes the IETF pk parameter: a truncated HMAC-SHA256 of the
// tier name and stored key, so that a client can tell partitions apart but
// learns nothing of the key (another client's token, an address).
type pkHasher struct{ secret []byte }

// pkState is a request's reusable HMAC, kept in its scratch.
type pkState struct {
	mac hash.Hash
	in  []byte
	sum []byte
}

func newPKHasher(secret []byte) (*pkHasher, error) {
	if secret == nil {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	} else if len(secret) < 16 {
		return nil, core.Invalid("httplimit", "PartitionKeySecret of %d bytes, want at least 16", len(secret))
	}
	return &pkHasher{secret: append([]byte(nil), secret...)}, nil
}

// appendPK appends ";pk=:<base64>:" for td's key, or nothing when
// partition keys are off or the tier has no key.
func (m *Middleware) appendPK(b []byte, s *scratch, td *TierDecision) []byte {
	if m.pk == nil || !td.Applied {
		return b
	}
	st := &s.pk
	if st.mac == nil {
		st.mac = hmac.New(sha256.New, m.pk.secret)
	}
	// The tier name, then 0 for a key of the tier's Key or 1 for one of its
	// Fallback (as the limiter's key is prefixed), then the stored key.
	sep := byte(0)
	if td.Fallback {
		sep = 1
	}
	st.in = append(append(append(st.in[:0], td.Tier...), sep), td.Key...)
	st.mac.Reset()
	st.mac.Write(st.in)
	st.sum = st.mac.Sum(st.sum[:0])
	b = append(b, ";pk=:"...)
	b = base64.StdEncoding.AppendEncode(b, st.sum[:pkLen])
	return append(b, ':')
}
