package core

import "strings"

// OwnKey returns key, a substring of a header (or gRPC metadata) value v,
// cloned when v is longer than key by more than maxLen: a keyed store that
// kept the substring would keep all of v alive (a short token padded with
// 256 KiB of blanks). Keys that are most of their value cost nothing.
func OwnKey(key, v string, maxLen int) string {
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
