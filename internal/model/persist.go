package model

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
)

// Store is the reference model of a persist.Store holding one keyed set: what
// the file holds is, for every key, the state (MarshalBinary bytes) its
// limiter had at the last checkpoint that completed, and nothing for keys
// that were not in the set then. A restore gives back exactly that. It keeps
// no side table and writes everything at every checkpoint.
type Store struct {
	saved map[string][]byte
}

// NewStore returns the model of an empty store.
func NewStore() *Store { return &Store{saved: map[string][]byte{}} }

// Checkpoint records live, the state of every key of the set, as the saved
// states.
func (s *Store) Checkpoint(live map[string][]byte) {
	s.saved = make(map[string][]byte, len(live))
	for k, v := range live {
		s.saved[k] = bytes.Clone(v)
	}
}

// Saved returns the saved states.
func (s *Store) Saved() map[string][]byte { return maps.Clone(s.saved) }

// Diff describes how got differs from the saved states, or returns "" if
// they are equal.
func (s *Store) Diff(got map[string][]byte) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(s.saved)) {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("key %q missing", k))
		case !bytes.Equal(g, s.saved[k]):
			diffs = append(diffs, fmt.Sprintf("key %q: %x, saved %x", k, g, s.saved[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := s.saved[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("key %q not saved", k))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprint(diffs)
}
