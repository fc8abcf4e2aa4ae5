package httplimit_test

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// An independent parser of RFC 9651 structured-field Lists, written from
// the RFC for the end-to-end tests: they read the IETF dialect's
// RateLimit-Policy and RateLimit fields with it rather than with anything
// the middleware or httpclient shares. It parses Lists of Items with
// Parameters (Inner Lists are refused: the draft's fields have none) and
// every bare item type but Dates and Display Strings.

// sfItem is one List member: a bare item and its parameters, in order.
type sfItem struct {
	Value  any // int64, float64, string (String), sfToken, []byte, bool
	Params []sfParam
}

type sfParam struct {
	Key   string
	Value any
}

type sfToken string

// param returns the value of parameter key and whether it is present.
func (it sfItem) param(key string) (any, bool) {
	for _, p := range it.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return nil, false
}

// parseSFList parses the field lines of a List field, joined as RFC 9110
// joins them (", "), as RFC 9651 section 4.2 does.
func parseSFList(lines []string) ([]sfItem, error) {
	p := &sfParser{s: strings.Join(lines, ", ")}
	p.skipSP()
	var items []sfItem
	for p.i < len(p.s) {
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		p.skipOWS()
		if p.i == len(p.s) {
			return items, nil
		}
		if p.s[p.i] != ',' {
			return nil, p.errorf("want ',' after a member")
		}
		p.i++
		p.skipOWS()
		if p.i == len(p.s) {
			return nil, p.errorf("trailing ','")
		}
	}
	return items, nil
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) errorf(format string, a ...any) error {
	return fmt.Errorf("sf: at %d of %q: %s", p.i, p.s, fmt.Sprintf(format, a...))
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) item() (sfItem, error) {
	if p.i < len(p.s) && p.s[p.i] == '(' {
		return sfItem{}, p.errorf("inner lists are not expected")
	}
	v, err := p.bare()
	if err != nil {
		return sfItem{}, err
	}
	it := sfItem{Value: v}
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return sfItem{}, err
		}
		var pv any = true
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if pv, err = p.bare(); err != nil {
				return sfItem{}, err
			}
		}
		replaced := false
		for j := range it.Params { // a repeated key overwrites, in place
			if it.Params[j].Key == k {
				it.Params[j].Value, replaced = pv, true
			}
		}
		if !replaced {
			it.Params = append(it.Params, sfParam{k, pv})
		}
	}
	return it, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.i == len(p.s) || !(p.s[p.i] == '*' || 'a' <= p.s[p.i] && p.s[p.i] <= 'z') {
		return "", p.errorf("bad key start")
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bare() (any, error) {
	if p.i == len(p.s) {
		return nil, p.errorf("missing item")
	}
	switch c := p.s[p.i]; {
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == '"':
		return p.str()
	case c == ':':
		return p.bytes()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-1] == '1', nil
		}
		return nil, p.errorf("bad boolean")
	case c == '*' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		return p.token(), nil
	}
	return nil, p.errorf("bad item start")
}

func (p *sfParser) number() (any, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits, frac, dot := 0, 0, false
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '.' && !dot {
			if digits > 12 {
				return nil, p.errorf("decimal integer part too long")
			}
			dot = true
		} else if '0' <= c && c <= '9' {
			if dot {
				frac++
			} else {
				digits++
			}
		} else {
			break
		}
		p.i++
	}
	if digits == 0 {
		return nil, p.errorf("number without digits")
	}
	if !dot {
		if digits > 15 {
			return nil, p.errorf("integer too long")
		}
		return strconv.ParseInt(p.s[start:p.i], 10, 64)
	}
	if frac == 0 || frac > 3 {
		return nil, p.errorf("bad decimal fraction")
	}
	return strconv.ParseFloat(p.s[start:p.i], 64)
}

func (p *sfParser) str() (any, error) {
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.i == len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return nil, p.errorf("bad escape")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return nil, p.errorf("bad string byte %#x", c)
		default:
			b.WriteByte(c)
		}
	}
	return nil, p.errorf("unterminated string")
}

func (p *sfParser) bytes() (any, error) {
	p.i++
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return nil, p.errorf("unterminated byte sequence")
	}
	b, err := base64.StdEncoding.DecodeString(p.s[p.i : p.i+end])
	if err != nil {
		return nil, p.errorf("bad base64: %v", err)
	}
	p.i += end + 1
	return b, nil
}

func (p *sfParser) token() sfToken {
	start := p.i
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !(c > 0x20 && c < 0x7f && !strings.ContainsRune("\"(),;<=>?@[\\]{}", rune(c))) {
			break
		}
		p.i++
	}
	return sfToken(p.s[start:p.i])
}

// The parser is itself tested on the RFC's examples, so that a failure of
// the end-to-end tests is not the parser's.
func TestSFParser(t *testing.T) {
	good := map[string]int{
		`sugar, tea, rum`:                                           3,
		`"org";q=600;w=60, "ip";q=25;w=1`:                           2,
		`abc;a=1;b=2;cde_456, ghi;jk=4`:                             2,
		`"x";pk=:cHJldGVuZCB0aGlzIGlzIGJpbmFyeQ==:;r=-5;f=?0;d=1.5`: 1,
		``: 0,
	}
	for in, n := range good {
		items, err := parseSFList([]string{in})
		if err != nil || len(items) != n {
			t.Errorf("parse %q = %v, %v; want %d items", in, items, err, n)
		}
	}
	for _, in := range []string{`a,`, `"open`, `a;B=1`, `1.2345`, `:bad*:`, `a b`, `?2`, `1234567890123456`} {
		if items, err := parseSFList([]string{in}); err == nil {
			t.Errorf("parse %q = %v, want an error", in, items)
		}
	}
	items, err := parseSFList([]string{`"org";q=600;w=60`, `"ip";q=25;w=1;pk=:AAE=:`})
	if err != nil || len(items) != 2 || items[1].Value != "ip" {
		t.Fatalf("two lines: %v, %v", items, err)
	}
	if v, _ := items[1].param("pk"); string(v.([]byte)) != "\x00\x01" {
		t.Errorf("pk = %v", v)
	}
	if v, _ := items[0].param("q"); v != int64(600) {
		t.Errorf("q = %#v", v)
	}
}
