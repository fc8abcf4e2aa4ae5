package core

import "strings"

// HeaderKey returns the key a header (or gRPC metadata) value v names: v
// trimmed of HTTP's optional whitespace, spaces and tabs. The key is
// cloned when v is longer than it by more than maxLen: a keyed store that
// kept the substring would keep all of v alive (a short token padded with
// 256 KiB of blanks). Keys that are most of their value cost nothing.
func HeaderKey(v string, maxLen int) string {
	return ownKey(TrimOWS(v), v, maxLen)
}

// BearerKey returns the token of an Authorization value v of the Bearer
// scheme (matched case-insensitively, followed by a space or a tab), kept
// as HeaderKey keeps a key, and whether there is one.
func BearerKey(v string, maxLen int) (string, bool) {
	const scheme = "bearer"
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) || (v[len(scheme)] != ' ' && v[len(scheme)] != '\t') {
		return "", false
	}
	tok := ownKey(TrimOWS(v[len(scheme):]), v, maxLen)
	return tok, tok != ""
}

// ownKey returns key, a substring of v, cloned when v is longer than key
// by more than maxLen (see HeaderKey).
func ownKey(key, v string, maxLen int) string {
	if len(v)-len(key) > maxLen {
		return strings.Clone(key)
	}
	return key
}

// TrimOWS trims HTTP's optional whitespace (spaces and tabs) from both ends
// of s. strings.Trim with a cutset would build the set on every call.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
