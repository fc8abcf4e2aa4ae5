package httplimit_test

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/httplimit"
)

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		header string // Authorization; "-" for none
		key    string
		ok     bool
	}{
		{"-", "", false},
		{"Bearer sk_live_1", "sk_live_1", true},
		{"bearer sk_live_1", "sk_live_1", true},
		{"BEARER \t sk_live_1  ", "sk_live_1", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearersk_live_1", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"", "", false},
	} {
		var r = newReq("192.0.2.1:1")
		if tc.header != "-" {
			r.Header.Set("Authorization", tc.header)
		}
		key, ok := httplimit.Bearer(r)
		if key != tc.key || ok != tc.ok {
			t.Errorf("Authorization %q: got (%q, %v), want (%q, %v)", tc.header, key, ok, tc.key, tc.ok)
		}
	}
}

func TestHeaderKey(t *testing.T) {
	k := httplimit.Header("x-org-id")
	if key, ok := k(newReq("192.0.2.1:1", "X-Org-Id", " acme ")); key != "acme" || !ok {
		t.Errorf("got (%q, %v), want (acme, true)", key, ok)
	}
	if key, ok := k(newReq("192.0.2.1:1", "X-Org-Id", " ")); ok {
		t.Errorf("blank header: got (%q, true)", key)
	}
	if key, ok := k(newReq("192.0.2.1:1")); ok {
		t.Errorf("no header: got (%q, true)", key)
	}
}

// TestClientIPSpoofing checks that forwarding headers are believed only
// from trusted proxies, and only as far as trusted proxies wrote them.
func TestClientIPSpoofing(t *testing.T) {
	prefixes := func(ss ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}
	noProxy := httplimit.IPConfig{}
	xff := httplimit.IPConfig{TrustedProxies: prefixes("10.0.0.0/8", "2001:db8:ffff::/48")}
	fwd := httplimit.IPConfig{TrustedProxies: prefixes("10.0.0.0/8"), Header: "forwarded"}
	per128 := httplimit.IPConfig{IPv6Prefix: 128}
	tests := []struct {
		name    string
		cfg     httplimit.IPConfig
		remote  string
		headers []string
		want    string
		ok      bool
	}{
		{"peer", noProxy, "203.0.113.9:4711", nil, "203.0.113.9", true},
		{"untrusted XFF ignored", noProxy, "203.0.113.9:4711",
			[]string{"X-Forwarded-For", "198.51.100.1"}, "203.0.113.9", true},
		{"untrusted Forwarded ignored", noProxy, "203.0.113.9:4711",
			[]string{"Forwarded", "for=198.51.100.1"}, "203.0.113.9", true},
		{"XFF header from a client that is not a proxy", xff, "203.0.113.9:4711",
			[]string{"X-Forwarded-For", "10.0.0.1"}, "203.0.113.9", true},
		{"one trusted proxy", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1", true},
		{"client prepends a fake address", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "1.1.1.1, 198.51.100.1"}, "198.51.100.1", true},
		{"client prepends a fake trusted address", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "10.9.9.9, 198.51.100.1"}, "198.51.100.1", true},
		{"two trusted proxies", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "6.6.6.6, 198.51.100.1, 10.0.0.3"}, "198.51.100.1", true},
		{"several header lines form one list", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "6.6.6.6, 198.51.100.1", "X-Forwarded-For", "10.0.0.3"}, "198.51.100.1", true},
		{"garbage in the trusted part blames the proxy", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "6.6.6.6, not-an-ip"}, "10.0.0.2", true},
		{"no header behind a proxy", xff, "10.0.0.2:80", nil, "10.0.0.2", true},
		{"all hops trusted", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "10.1.1.1"}, "10.1.1.1", true},
		{"XFF entry with a port", xff, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "198.51.100.1:5555"}, "198.51.100.1", true},
		{"IPv6 client behind an IPv6 proxy, grouped by /64", xff, "[2001:db8:ffff::1]:80",
			[]string{"X-Forwarded-For", "2001:db8:1:2:3:4:5:6"}, "2001:db8:1:2::/64", true},
		{"IPv6 peer grouped by /64", noProxy, "[2001:db8:1:2:3:4:5:6]:80", nil, "2001:db8:1:2::/64", true},
		{"IPv6 peer per address", per128, "[2001:db8:1:2:3:4:5:6%eth0]:80", nil, "2001:db8:1:2:3:4:5:6", true},
		{"IPv4-mapped peer", noProxy, "[::ffff:203.0.113.9]:80", nil, "203.0.113.9", true},
		{"IPv4-mapped trusted proxy", xff, "[::ffff:10.0.0.2]:80",
			[]string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1", true},
		{"Forwarded", fwd, "10.0.0.2:80",
			[]string{"Forwarded", `for=6.6.6.6, for=198.51.100.1;proto=https;by=10.0.0.2`}, "198.51.100.1", true},
		{"Forwarded quoted IPv6 with port", fwd, "10.0.0.2:80",
			[]string{"Forwarded", `For="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::/64", true},
		{"Forwarded unknown blames the proxy", fwd, "10.0.0.2:80",
			[]string{"Forwarded", `for=unknown`}, "10.0.0.2", true},
		{"Forwarded without for", fwd, "10.0.0.2:80",
			[]string{"Forwarded", `proto=https`}, "10.0.0.2", true},
		{"Forwarded unbracketed IPv6 rejected", fwd, "10.0.0.2:80",
			[]string{"Forwarded", `for=2001:db8::1`}, "10.0.0.2", true},
		{"Forwarded client injects a quote", fwd, "10.0.0.2:80",
			[]string{"Forwarded", `for="6.6.6.6, for=198.51.100.1`}, "198.51.100.1", true},
		{"X-Forwarded-For ignored when Forwarded is configured", fwd, "10.0.0.2:80",
			[]string{"X-Forwarded-For", "6.6.6.6"}, "10.0.0.2", true},
		{"no RemoteAddr", noProxy, "", nil, "", false},
		{"unix socket", noProxy, "@", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := httplimit.ClientIP(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			key, ok := k(newReq(tt.remote, tt.headers...))
			if key != tt.want || ok != tt.ok {
				t.Errorf("got (%q, %v), want (%q, %v)", key, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestClientIPMappedAgree checks that an IPv4 client gets one key however
// its address is written: plain or IPv4-mapped (::ffff:a.b.c.d), in
// RemoteAddr, X-Forwarded-For (bare or with a port) or Forwarded, whatever
// IPv6Prefix is; and that a trusted proxy written in mapped form in the
// header is recognised as trusted. Before, a mapped X-Forwarded-For entry
// was kept mapped: every IPv4 client behind a dual-stack proxy got the key
// "::/64", and with IPv6Prefix 128 a key unlike its plain one.
func TestClientIPMappedAgree(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, bits := range []int{0, 64, 96, 128} {
		xff, err := httplimit.ClientIP(httplimit.IPConfig{TrustedProxies: trusted, IPv6Prefix: bits})
		if err != nil {
			t.Fatal(err)
		}
		fwd, err := httplimit.ClientIP(httplimit.IPConfig{TrustedProxies: trusted, IPv6Prefix: bits, Header: "Forwarded"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			k    httplimit.KeyFunc
			r    *http.Request
		}{
			{"RemoteAddr", xff, newReq("198.51.100.9:1")},
			{"mapped RemoteAddr", xff, newReq("[::ffff:198.51.100.9]:1")},
			{"XFF", xff, newReq("10.0.0.2:80", "X-Forwarded-For", "198.51.100.9")},
			{"mapped XFF", xff, newReq("10.0.0.2:80", "X-Forwarded-For", "::ffff:198.51.100.9")},
			{"mapped XFF with a port", xff, newReq("10.0.0.2:80", "X-Forwarded-For", "[::ffff:198.51.100.9]:5555")},
			{"mapped XFF behind a mapped trusted hop", xff, newReq("10.0.0.2:80", "X-Forwarded-For", "6.6.6.6, ::ffff:198.51.100.9, ::ffff:10.0.0.3")},
			{"mapped XFF behind a mapped proxy peer", xff, newReq("[::ffff:10.0.0.2]:80", "X-Forwarded-For", "::ffff:198.51.100.9")},
			{"Forwarded", fwd, newReq("10.0.0.2:80", "Forwarded", "for=198.51.100.9")},
			{"mapped Forwarded", fwd, newReq("10.0.0.2:80", "Forwarded", `for="[::ffff:198.51.100.9]"`)},
			{"mapped Forwarded behind a mapped trusted hop", fwd, newReq("10.0.0.2:80", "Forwarded", `for="[::ffff:198.51.100.9]", for="[::ffff:10.0.0.3]:80"`)},
		} {
			if key, ok := tc.k(tc.r); key != "198.51.100.9" || !ok {
				t.Errorf("IPv6Prefix %d, %s: got (%q, %v), want (198.51.100.9, true)", bits, tc.name, key, ok)
			}
		}
	}
}

func TestClientIPConfigErrors(t *testing.T) {
	for _, cfg := range []httplimit.IPConfig{
		{IPv6Prefix: -1},
		{IPv6Prefix: 129},
		{Header: "X-Real-IP"},
		{TrustedProxies: []netip.Prefix{{}}},
	} {
		if _, err := httplimit.ClientIP(cfg); !errors.Is(err, ratekit.ErrInvalidConfig) {
			t.Errorf("ClientIP(%+v) error %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// TestClientIPAllocs checks that the common case, an IPv4 peer and no
// proxy, costs no allocation.
func TestClientIPAllocs(t *testing.T) {
	k, err := httplimit.ClientIP(httplimit.IPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	r := newReq("203.0.113.9:4711")
	if a := testing.AllocsPerRun(100, func() { k(r) }); a != 0 {
		t.Errorf("%v allocations per call, want 0", a)
	}
	r = newReq("203.0.113.9:4711", "Authorization", "Bearer x")
	if a := testing.AllocsPerRun(100, func() { httplimit.Bearer(r) }); a != 0 {
		t.Errorf("Bearer: %v allocations per call, want 0", a)
	}
}

// FuzzClientIP feeds arbitrary peers and forwarding headers to ClientIP. It
// must never panic, must ignore the header from an untrusted peer, and must
// take the nearest hop (the one the trusted proxy itself wrote) whenever
// that hop is a valid untrusted address, whatever the client put before it.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2:80", "6.6.6.6, 198.51.100.1", false)
	f.Add("10.0.0.2:80", "for=6.6.6.6, for=\"[2001:db8::1]:80\"", true)
	f.Add("203.0.113.9:1", "10.0.0.1", false)
	f.Add("[::ffff:10.0.0.2]:80", "10.1.1.1,,", false)
	f.Add("[fe80::1%eth0]:80", "for=unknown;proto=http", true)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	xff, err := httplimit.ClientIP(httplimit.IPConfig{TrustedProxies: trusted, IPv6Prefix: 128})
	if err != nil {
		f.Fatal(err)
	}
	fwd, err := httplimit.ClientIP(httplimit.IPConfig{TrustedProxies: trusted, IPv6Prefix: 128, Header: "Forwarded"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, remote, header string, forwarded bool) {
		k, name := xff, "X-Forwarded-For"
		if forwarded {
			k, name = fwd, "Forwarded"
		}
		r := newReq(remote)
		r.Header.Set(name, header)
		key, ok := k(r)

		peer, err := netip.ParseAddrPort(remote)
		if err != nil {
			return // other RemoteAddr forms are covered by the table test
		}
		if !ok {
			t.Fatalf("peer %q parses but no key", remote)
		}
		if _, err := netip.ParseAddr(key); err != nil {
			t.Fatalf("key %q is not an address", key)
		}
		pa := peer.Addr().Unmap().WithZone("")
		if !trusted[0].Contains(pa) {
			if key != pa.String() {
				t.Fatalf("untrusted peer %q: key %q, want the peer", remote, key)
			}
			return
		}
		if forwarded {
			return
		}
		last := header[strings.LastIndexByte(header, ',')+1:]
		if a, err := netip.ParseAddr(strings.Trim(last, " \t")); err == nil && !trusted[0].Contains(a.Unmap()) {
			if want := a.Unmap().WithZone("").String(); key != want {
				t.Fatalf("header %q behind trusted %q: key %q, want the nearest hop %q", header, remote, key, want)
			}
		}
	})
}
