package grpclimit_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/ratekit/ratekit/grpclimit"
	"github.com/ratekit/ratekit/httplimit"
)

func callCtx(peerAddr net.Addr, kv ...string) context.Context {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
	if peerAddr != nil {
		ctx = peer.NewContext(ctx, &peer.Peer{Addr: peerAddr})
	}
	return ctx
}

func tcp(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func TestBearerAndMetadata(t *testing.T) {
	for _, tc := range []struct {
		kv     []string
		bearer string
		org    string
	}{
		{[]string{"authorization", "Bearer sk_1", "x-org-id", " acme "}, "sk_1", "acme"},
		{[]string{"authorization", "bearer\tsk_2"}, "sk_2", ""},
		{[]string{"authorization", "Basic dXNlcg=="}, "", ""},
		{[]string{"authorization", "Bearer   "}, "", ""},
		{[]string{"authorization", "Bearer"}, "", ""},
		{nil, "", ""},
	} {
		ctx := callCtx(nil, tc.kv...)
		if got, ok := grpclimit.Bearer(ctx, "/m"); got != tc.bearer || ok != (tc.bearer != "") {
			t.Errorf("Bearer(%q) = %q, %v; want %q", tc.kv, got, ok, tc.bearer)
		}
		if got, ok := grpclimit.Metadata("X-Org-ID")(ctx, "/m"); got != tc.org || ok != (tc.org != "") {
			t.Errorf("Metadata(x-org-id) of %q = %q, %v; want %q", tc.kv, got, ok, tc.org)
		}
	}
	if _, ok := grpclimit.Bearer(context.Background(), "/m"); ok {
		t.Error("Bearer without metadata found a key")
	}
}

// TestPeerIP: the peer's address is the key unless the peer is a trusted
// proxy; x-forwarded-for is read only then, from the right, past trusted
// hops; a spoofed x-forwarded-for from an untrusted peer is ignored.
func TestPeerIP(t *testing.T) {
	plain := must(grpclimit.PeerIP(httplimit.IPConfig{}))
	proxied := must(grpclimit.PeerIP(httplimit.IPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}))
	for _, tc := range []struct {
		f    grpclimit.KeyFunc
		peer net.Addr
		xff  string
		want string
	}{
		{plain, tcp("192.0.2.7:5000"), "", "192.0.2.7"},
		{plain, tcp("192.0.2.7:5000"), "203.0.113.9", "192.0.2.7"},
		{plain, tcp("[2001:db8:1:2:3::9]:5000"), "", "2001:db8:1:2::/64"},
		{plain, tcp("[::ffff:192.0.2.7]:5000"), "", "192.0.2.7"},
		{proxied, tcp("10.1.2.3:443"), "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9"},
		{proxied, tcp("10.1.2.3:443"), "", "10.1.2.3"},
		{proxied, tcp("192.0.2.7:5000"), "203.0.113.9", "192.0.2.7"},
		{proxied, &net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "203.0.113.9", ""},
		{proxied, nil, "", ""},
	} {
		var kv []string
		if tc.xff != "" {
			kv = []string{"x-forwarded-for", tc.xff}
		}
		got, ok := tc.f(callCtx(tc.peer, kv...), "/m")
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("peer %v, xff %q: key %q, %v; want %q", tc.peer, tc.xff, got, ok, tc.want)
		}
	}
	if _, err := grpclimit.PeerIP(httplimit.IPConfig{IPv6Prefix: 200}); err == nil || !strings.Contains(err.Error(), "IPv6Prefix") {
		t.Errorf("PeerIP with a bad prefix: %v", err)
	}
}

// TestKeyFuncAllocs: finding a key reads the one metadata key it needs,
// not a copy of all of the call's metadata (a real call carries a dozen
// keys; a copy costs an allocation per key, per tier, per call): at most
// one allocation per lookup, whatever else the call carries.
func TestKeyFuncAllocs(t *testing.T) {
	md := metadata.Pairs("authorization", "Bearer sk_live_1", "x-org", "acme",
		":authority", "bufnet", "content-type", "application/grpc", "user-agent", "grpc-go/1.85.0",
		"grpc-accept-encoding", "gzip", "te", "trailers", "x-request-id", "r_1")
	ctx := metadata.NewIncomingContext(context.Background(), md)
	org := grpclimit.Metadata("X-Org")
	for name, f := range map[string]grpclimit.KeyFunc{"Bearer": grpclimit.Bearer, "Metadata": org} {
		if _, ok := f(ctx, "/m"); !ok {
			t.Fatalf("%s found no key", name)
		}
		if n := testing.AllocsPerRun(100, func() { f(ctx, "/m") }); n > 1 {
			t.Errorf("%s: %.0f allocations per lookup, want at most 1", name, n)
		}
	}
}
