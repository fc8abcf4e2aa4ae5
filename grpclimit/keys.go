package grpclimit

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/ratekit/ratekit/httplimit"
	"github.com/ratekit/ratekit/internal/core"
)

// Bearer is the KeyFunc of the token in the call's "authorization"
// metadata ("Bearer <token>", the scheme matched case-insensitively, as
// gRPC's per-RPC credentials send it). It finds no key when the metadata
// is absent, uses another scheme or carries an empty token. Like
// httplimit.Bearer, it does not check the token: bound the tier's keyed
// store and pair it with a FailureTier.
func Bearer(ctx context.Context, _ string) (string, bool) {
	// ValueFromIncomingContext copies the one key's values;
	// FromIncomingContext would copy every key's, an allocation each.
	vs := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vs) == 0 {
		return "", false
	}
	v := vs[0]
	const scheme = "bearer"
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) || (v[len(scheme)] != ' ' && v[len(scheme)] != '\t') {
		return "", false
	}
	tok := core.OwnKey(core.TrimOWS(v[len(scheme):]), v, httplimit.MaxKeyLen)
	return tok, tok != ""
}

// Metadata returns a KeyFunc that uses the first value of the named
// metadata key (matched lower-cased, as gRPC stores keys), trimmed of
// spaces and tabs: an "x-org-id", an "x-api-key". It finds no key when
// the key is absent or its value empty.
func Metadata(name string) KeyFunc {
	name = strings.ToLower(name)
	return func(ctx context.Context, _ string) (string, bool) {
		vs := metadata.ValueFromIncomingContext(ctx, name) // as Bearer
		if len(vs) == 0 {
			return "", false
		}
		v := core.OwnKey(core.TrimOWS(vs[0]), vs[0], httplimit.MaxKeyLen)
		return v, v != ""
	}
}

// PeerIP returns a KeyFunc that finds the client's IP address from the
// call's peer, with httplimit.ClientIP's rules and cfg: the key is the
// peer's address unless the peer is one of cfg.TrustedProxies, in which
// case the forwarding metadata (cfg.Header lower-cased: "x-forwarded-for"
// by default, or "forwarded") is read from the right, past the trusted
// hops; IPv6 clients are grouped by cfg.IPv6Prefix. Metadata from an
// untrusted peer is never read, so no client chooses its own key. It
// finds no key for a peer that is not an IP address (a Unix socket,
// bufconn). It returns an error wrapping ratekit.ErrInvalidConfig for a
// bad cfg, as ClientIP does.
func PeerIP(cfg httplimit.IPConfig) (KeyFunc, error) {
	f, err := httplimit.ClientIP(cfg)
	if err != nil {
		return nil, err
	}
	mdKey, hdrKey := "x-forwarded-for", "X-Forwarded-For"
	if strings.EqualFold(cfg.Header, "forwarded") {
		mdKey, hdrKey = "forwarded", "Forwarded"
	}
	// ClientIP reads an *http.Request: lend it one with the peer address
	// and the forwarding metadata, pooled so that a call allocates none.
	pool := sync.Pool{New: func() any { return &http.Request{Header: make(http.Header, 1)} }}
	return func(ctx context.Context, _ string) (string, bool) {
		p, ok := peer.FromContext(ctx)
		if !ok || p.Addr == nil {
			return "", false
		}
		r := pool.Get().(*http.Request)
		r.RemoteAddr = p.Addr.String()
		if vs := metadata.ValueFromIncomingContext(ctx, mdKey); len(vs) > 0 {
			r.Header[hdrKey] = vs
		}
		key, ok := f(r)
		delete(r.Header, hdrKey)
		r.RemoteAddr = ""
		pool.Put(r)
		return key, ok
	}, nil
}
