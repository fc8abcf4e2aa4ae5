//go:build !race

package otelratekit_test

const raceEnabled = false
