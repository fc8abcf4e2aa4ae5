package httplimit

import (
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"

	"github.com/ratekit/ratekit/internal/core"
)

// KeyFunc finds the key a Tier limits a request on: an API token, an org ID,
// a client IP. It reports ok false when the request carries no key; the
// Tier's Fallback and Missing then decide what happens. A KeyFunc is called
// once per request and tier, from the goroutine serving the request; it
// should be cheap and must not retain r.
type KeyFunc func(r *http.Request) (key string, ok bool)

// Bearer is the KeyFunc of the token in an "Authorization: Bearer <token>"
// header (RFC 6750; the scheme is matched case-insensitively). It finds no
// key when the header is absent, uses another scheme, or carries an empty
// token. It does not allocate, unless blanks around the token are longer
// than MaxKeyLen: the token is then copied, so that a store does not keep
// the whole header alive.
//
// Bearer does not check the token: a per-token tier limits whatever token a
// client sends, valid or not, so bound the tier's keyed store (KeyedConfig's
// MaxKeys) and put a FailureTier on the IP to stop a client guessing tokens.
func Bearer(r *http.Request) (string, bool) {
	vs := r.Header["Authorization"] // canonical already: skip Get's canonicalization
	if len(vs) == 0 {
		return "", false
	}
	v := vs[0]
	const scheme = "bearer"
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) || (v[len(scheme)] != ' ' && v[len(scheme)] != '\t') {
		return "", false
	}
	tok := core.OwnKey(core.TrimOWS(v[len(scheme):]), v, MaxKeyLen)
	return tok, tok != ""
}

// Header returns a KeyFunc that uses the first value of the named request
// header, trimmed of spaces and tabs (an "X-Org-ID", an "X-API-Key"). It
// finds no key when the header is absent or empty. The returned func does
// not allocate, unless it trims more than MaxKeyLen bytes of blanks (see
// Bearer).
func Header(name string) KeyFunc {
	name = textproto.CanonicalMIMEHeaderKey(name)
	return func(r *http.Request) (string, bool) {
		vs := r.Header[name]
		if len(vs) == 0 {
			return "", false
		}
		v := core.OwnKey(core.TrimOWS(vs[0]), vs[0], MaxKeyLen)
		return v, v != ""
	}
}

// IPConfig configures ClientIP. Its zero value trusts no proxy and groups
// IPv6 clients by /64.
type IPConfig struct {
	// TrustedProxies lists the addresses of the reverse proxies in front of
	// the service. Only a connection from one of them has its forwarding
	// Header believed, and only the part of it that trusted proxies wrote.
	// Empty (the default): forwarding headers are ignored and the key is the
	// connection's peer address, so no client can choose its own key.
	TrustedProxies []netip.Prefix

	// Header is the forwarding header the trusted proxies set:
	// "X-Forwarded-For" (the default) or "Forwarded" (RFC 7239; its for=
	// parameters are read). It is unused without TrustedProxies.
	Header string

	// IPv6Prefix is how many leading bits of an IPv6 address identify a
	// client, 1 to 128. 0 means 64: a single host usually owns a whole /64,
	// so a per-address limit on IPv6 is trivially evaded. IPv4 addresses
	// (and IPv4-mapped IPv6 ones) are always used whole.
	IPv6Prefix int
}

// ClientIP returns a KeyFunc that finds the client's IP address, for per-IP
// tiers and FailureTiers. It returns an error wrapping
// ratekit.ErrInvalidConfig for an unknown Header, an IPv6Prefix out of range,
// or an invalid trusted prefix.
//
// The key is the peer address of the connection (http.Request.RemoteAddr)
// unless that peer is a trusted proxy. Then the forwarding header is read
// from the right, the end that the nearest proxy wrote: each address that is
// itself a trusted proxy is skipped, and the first one that is not is the
// client. A client can prepend anything it likes to the header, but never
// past the addresses the trusted proxies appended, so it cannot choose its
// key. If the header is missing, or the trusted part of it holds something
// that is not an IP address ("unknown", an obfuscated identifier, garbage),
// the key is the last trusted proxy's address: a misconfigured proxy then
// lumps its clients together rather than letting them escape the limit.
//
// Keys are the canonical text form of the address (IPv4 dotted quad, IPv4-
// mapped addresses unmapped, zones dropped), or of its IPv6 prefix
// ("2001:db8:1:2::/64"). An IPv4 peer without a proxy costs no allocation.
// The func finds no key only when RemoteAddr is not an IP address (a Unix
// socket, a test request with an empty RemoteAddr).
func ClientIP(cfg IPConfig) (KeyFunc, error) {
	k := &ipKey{bits: cfg.IPv6Prefix}
	if k.bits == 0 {
		k.bits = 64
	}
	if k.bits < 1 || k.bits > 128 {
		return nil, core.Invalid("httplimit", "IPv6Prefix %d out of range 1..128", cfg.IPv6Prefix)
	}
	switch h := textproto.CanonicalMIMEHeaderKey(cfg.Header); h {
	case "", "X-Forwarded-For":
		k.header = "X-Forwarded-For"
	case "Forwarded":
		k.header, k.forwarded = h, true
	default:
		return nil, core.Invalid("httplimit", "forwarding header %q is neither X-Forwarded-For nor Forwarded", cfg.Header)
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, core.Invalid("httplimit", "invalid trusted proxy prefix %v", p)
		}
		// Compare unmapped addresses against unmapped prefixes, so that
		// 10.0.0.0/8 matches a peer seen as ::ffff:10.1.2.3.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		k.trusted = append(k.trusted, p.Masked())
	}
	return k.key, nil
}

type ipKey struct {
	trusted   []netip.Prefix
	header    string
	forwarded bool
	bits      int
}

func (k *ipKey) key(r *http.Request) (string, bool) {
	text, addr, ok := parseHostPort(r.RemoteAddr)
	if !ok {
		return "", false
	}
	if !k.isTrusted(addr) {
		return k.format(text, addr), true
	}
	// The peer is a trusted proxy: walk the header from the right. Several
	// header lines form one list, in order.
	lines := r.Header[k.header]
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for rest != "" {
			var elem string
			if c := strings.LastIndexByte(rest, ','); c >= 0 {
				elem, rest = rest[c+1:], rest[:c]
			} else {
				elem, rest = rest, ""
			}
			hopText, hop, ok := k.parseHop(elem)
			if !ok {
				// Written (or passed on) by a trusted proxy, yet not an
				// address: blame the proxy, not an arbitrary client.
				return k.format(text, addr), true
			}
			text, addr = hopText, hop
			if !k.isTrusted(addr) {
				return k.format(text, addr), true
			}
		}
	}
	// Every hop is trusted: the request came from inside.
	return k.format(text, addr), true
}

func (k *ipKey) isTrusted(a netip.Addr) bool {
	for _, p := range k.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses one element of the forwarding header.
func (k *ipKey) parseHop(elem string) (string, netip.Addr, bool) {
	elem = core.TrimOWS(elem)
	if !k.forwarded {
		// X-Forwarded-For holds bare addresses; some proxies add a port.
		if a, ok := parseAddr(elem); ok {
			return elem, a, true
		}
		return parseHostPort(elem)
	}
	// Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, or
	// for="[2001:db8:cafe::17]:4711". Parameter names are case-insensitive.
	for elem != "" {
		var pair string
		if c := strings.IndexByte(elem, ';'); c >= 0 {
			pair, elem = elem[:c], elem[c+1:]
		} else {
			pair, elem = elem, ""
		}
		pair = core.TrimOWS(pair)
		if len(pair) < 4 || !strings.EqualFold(pair[:4], "for=") {
			continue
		}
		v := pair[4:]
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if !strings.Contains(v, ":") {
			a, ok := parseAddr(v) // a bare IPv4 address; IPv6 must be bracketed
			return v, a, ok
		}
		return parseHostPort(v)
	}
	return "", netip.Addr{}, false
}

// parseHostPort parses "1.2.3.4:80", "[::1]:80" or "[::1]" and returns the
// host's text (a substring of s, so no allocation) and its address.
func parseHostPort(s string) (string, netip.Addr, bool) {
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", netip.Addr{}, false
		}
		host = s[1:end]
	} else if c := strings.LastIndexByte(s, ':'); c >= 0 {
		host = s[:c]
	}
	a, ok := parseAddr(host)
	return host, a, ok
}

// parseAddr parses an address, from whichever header or field, and unmaps
// it: every path that reads an address goes through here, so that an IPv4
// client written as ::ffff:a.b.c.d (as dual-stack sockets and proxies do)
// has the same key, and the same trust, as when written plainly.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// format returns the key of a: text itself when it is already the canonical
// form of an IPv4 address (netip.ParseAddr accepts only the canonical
// dotted quad), and a freshly formatted string otherwise.
func (k *ipKey) format(text string, a netip.Addr) string {
	if a.Is4() {
		if !strings.Contains(text, ":") {
			return text
		}
		return a.String()
	}
	a = a.WithZone("")
	if k.bits == 128 {
		return a.String()
	}
	p, _ := a.Prefix(k.bits)
	return p.String()
}
