package httpclient

import "strings"

// A minimal parser for the Structured Field Values of RFC 8941 that the IETF
// RateLimit fields use: a List of Items with Parameters, e.g.
//
//	"burst";q=100;w=60, "daily";q=1000;w=86400
//
// It also accepts Dictionary members (key=value) in the same pass, because
// draft-07 sent RateLimit as a Dictionary ("limit=100, remaining=50"). Inner
// lists are parsed and kept as members with kind sfInner, so a field that
// holds one is not rejected wholesale. Any syntax error rejects the whole
// field, as the draft requires ("Malformed RateLimit header fields MUST be
// ignored"). Numbers follow RFC 8941's bounds (15 integer digits), so no
// value can overflow.

type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
	sfInner
)

// sfValue is a bare item. num holds an Integer, the integer part of a
// Decimal, or a Boolean as 0/1; str holds a String, Token or the base64 text
// of a Byte Sequence.
type sfValue struct {
	kind sfKind
	num  int64
	str  string
}

type sfParam struct {
	key   string
	value sfValue
}

// sfMember is a list item, or a dictionary member when isDict is set.
type sfMember struct {
	// name is a list item's String or Token, or a dictionary member's key.
	name   string
	isDict bool
	// value is the list item itself, or the dictionary member's value
	// (Boolean true for a bare key).
	value  sfValue
	params []sfParam
}

// param returns the value of the parameter key (the last one, per RFC 8941).
func (m *sfMember) param(key string) (sfValue, bool) {
	for i := len(m.params) - 1; i >= 0; i-- {
		if m.params[i].key == key {
			return m.params[i].value, true
		}
	}
	return sfValue{}, false
}

// parseSFList parses the field lines vs as one list (RFC 8941 joins lines
// with commas).
func parseSFList(vs []string) ([]sfMember, bool) {
	p := sfParser{}
	if len(vs) == 1 {
		p.s = vs[0] // the usual case, without Join's copy
	} else {
		p.s = strings.Join(vs, ",")
	}
	p.ows()
	var out []sfMember
	if p.done() {
		return nil, true
	}
	for {
		m, ok := p.member()
		if !ok {
			return nil, false
		}
		out = append(out, m)
		p.ows()
		if p.done() {
			return out, true
		}
		if p.s[p.i] != ',' {
			return nil, false
		}
		p.i++
		p.ows()
		if p.done() { // trailing comma
			return nil, false
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

// ows skips optional white space (SP and HTAB).
func (p *sfParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) member() (sfMember, bool) {
	var m sfMember
	if p.done() {
		return m, false
	}
	if p.s[p.i] == '(' {
		if !p.innerList() {
			return m, false
		}
		m.value.kind = sfInner
	} else {
		v, ok := p.bareItem()
		if !ok {
			return m, false
		}
		if v.kind == sfToken && isKey(v.str) && !p.done() && p.s[p.i] == '=' {
			// A dictionary member: key=value.
			p.i++
			m.name, m.isDict = v.str, true
			if !p.done() && p.s[p.i] == '(' {
				if !p.innerList() {
					return m, false
				}
				m.value.kind = sfInner
			} else if m.value, ok = p.bareItem(); !ok {
				return m, false
			}
		} else {
			m.value = v
			if v.kind == sfString || v.kind == sfToken {
				m.name = v.str
			}
		}
	}
	var ok bool
	m.params, ok = p.params()
	return m, ok
}

func (p *sfParser) innerList() bool {
	p.i++ // '('
	for {
		for !p.done() && p.s[p.i] == ' ' {
			p.i++
		}
		if p.done() {
			return false
		}
		if p.s[p.i] == ')' {
			p.i++
			return true
		}
		if _, ok := p.bareItem(); !ok {
			return false
		}
		if _, ok := p.params(); !ok {
			return false
		}
		if !p.done() && p.s[p.i] != ' ' && p.s[p.i] != ')' {
			return false
		}
	}
}

func (p *sfParser) params() ([]sfParam, bool) {
	var ps []sfParam
	for !p.done() && p.s[p.i] == ';' {
		p.i++
		for !p.done() && p.s[p.i] == ' ' {
			p.i++
		}
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		v := sfValue{kind: sfBoolean, num: 1}
		if !p.done() && p.s[p.i] == '=' {
			p.i++
			if v, ok = p.bareItem(); !ok {
				return nil, false
			}
		}
		ps = append(ps, sfParam{key: key, value: v})
	}
	return ps, true
}

func isLCAlpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }

func isKey(s string) bool {
	if s == "" || !(isLCAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			return false
		}
	}
	return true
}

func (p *sfParser) key() (string, bool) {
	start := p.i
	if p.done() || !(isLCAlpha(p.s[p.i]) || p.s[p.i] == '*') {
		return "", false
	}
	for p.i++; !p.done(); p.i++ {
		c := p.s[p.i]
		if !(isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
	}
	return p.s[start:p.i], true
}

// isTChar reports whether c is an RFC 9110 tchar, or one of ":" and "/"
// that RFC 8941 also allows after a token's first character.
func isTChar(c byte) bool {
	if isLCAlpha(c) || isDigit(c) || (c >= 'A' && c <= 'Z') {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}

func (p *sfParser) bareItem() (sfValue, bool) {
	if p.done() {
		return sfValue{}, false
	}
	c := p.s[p.i]
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
		start := p.i
		for p.i++; !p.done() && isTChar(p.s[p.i]); p.i++ {
		}
		return sfValue{kind: sfToken, str: p.s[start:p.i]}, true
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return sfValue{}, false
		}
		b64 := p.s[p.i+1 : p.i+1+end]
		for i := 0; i < len(b64); i++ {
			c := b64[i]
			if !(isLCAlpha(c) || isDigit(c) || (c >= 'A' && c <= 'Z') || c == '+' || c == '/' || c == '=') {
				return sfValue{}, false
			}
		}
		p.i += end + 2
		return sfValue{kind: sfBytes, str: b64}, true
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			v := sfValue{kind: sfBoolean, num: int64(p.s[p.i+1] - '0')}
			p.i += 2
			return v, true
		}
	}
	return sfValue{}, false
}

// number parses an Integer (at most 15 digits) or a Decimal (at most 12
// integer and 3 fractional digits), so the value always fits an int64.
func (p *sfParser) number() (sfValue, bool) {
	neg := false
	if p.s[p.i] == '-' {
		neg = true
		p.i++
	}
	var n int64
	digits := 0
	for ; !p.done() && isDigit(p.s[p.i]); p.i++ {
		n = n*10 + int64(p.s[p.i]-'0')
		if digits++; digits > 15 {
			return sfValue{}, false
		}
	}
	if digits == 0 {
		return sfValue{}, false
	}
	kind := sfInteger
	if !p.done() && p.s[p.i] == '.' {
		if digits > 12 {
			return sfValue{}, false
		}
		p.i++
		frac := 0
		for ; !p.done() && isDigit(p.s[p.i]); p.i++ {
			if frac++; frac > 3 {
				return sfValue{}, false
			}
		}
		if frac == 0 {
			return sfValue{}, false
		}
		kind = sfDecimal
	}
	if neg {
		n = -n
	}
	return sfValue{kind: kind, num: n}, true
}

func (p *sfParser) str() (sfValue, bool) {
	// Fast path: no escapes, so the value is a substring of the field.
	for i := p.i + 1; i < len(p.s); i++ {
		c := p.s[i]
		if c == '"' {
			v := sfValue{kind: sfString, str: p.s[p.i+1 : i]}
			p.i = i + 1
			return v, true
		}
		if c == '\\' || c < 0x20 || c > 0x7e {
			break
		}
	}
	var b strings.Builder
	for p.i++; !p.done(); p.i++ {
		c := p.s[p.i]
		switch {
		case c == '\\':
			p.i++
			if p.done() || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return sfValue{}, false
			}
			b.WriteByte(p.s[p.i])
		case c == '"':
			p.i++
			return sfValue{kind: sfString, str: b.String()}, true
		case c < 0x20 || c > 0x7e:
			return sfValue{}, false
		default:
			b.WriteByte(c)
		}
	}
	return sfValue{}, false
}
