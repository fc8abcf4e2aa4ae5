// Package model holds simple, obviously correct reference models of the
// ratekit algorithms, for fuzz tests to compare against: plain fields, exact
// (often math/big) arithmetic, no cleverness and no concern for speed. It is
// not API.
package model
