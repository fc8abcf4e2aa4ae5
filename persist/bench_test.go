package persist_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ratekit/ratekit/persist"
	"github.com/ratekit/ratekit/rolling"
)

// The benchmarks of a million keys take tens of seconds to set up; they
// run, with a few variants of the others, only with RATEKIT_BENCH_LARGE=1,
// so that CI's run of every benchmark once stays short.
func skipLarge(b *testing.B, large bool) {
	if large && os.Getenv("RATEKIT_BENCH_LARGE") == "" {
		b.Skip("set RATEKIT_BENCH_LARGE=1 to run the 1M-key benchmarks")
	}
}

func benchKey(i int) string { return fmt.Sprintf("org-%07d", i) }

// benchSet returns a set of n rolling limiters, each of which has taken once.
func benchSet(b *testing.B, n int) set[string, *rolling.Limiter] {
	s := rollingSet(b, wide(1<<40), 1000*time.Hour)
	for i := range n {
		s.Take(t0, benchKey(i), 1)
	}
	return s
}

// heap returns the live heap after two collections (the second clears
// the pools, bbolt's pool of page buffers among them).
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// reportCPU reports the process's CPU time per op (GC workers included,
// fsync waits not), if the system tells it.
func reportCPU(b *testing.B, cpu time.Duration) {
	if cpu >= 0 {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}

// reportDisk reports the size of the store file at path, which bbolt grows
// in steps of up to 16 MiB, and the bytes of its pages in use per key. The
// store must be closed.
func reportDisk(b *testing.B, path string, keys int) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var used int64
	db.View(func(tx *bolt.Tx) error {
		used = tx.Size()
		return nil
	})
	b.ReportMetric(float64(fi.Size()), "B-file")
	b.ReportMetric(float64(used)/float64(keys), "B-used/key")
}

// BenchmarkCheckpoint measures a checkpoint of a set whose keys all changed
// since the last one (dirty) or none did (clean: the cost of finding that
// out), with every commit synced to disk or not. It reports the file's size
// and the side table's memory per key.
func BenchmarkCheckpoint(b *testing.B) {
	for _, bc := range []struct {
		keys  int
		dirty bool
		sync  bool
		large bool
	}{
		{1_000, true, true, false},
		{100_000, true, true, false},
		{100_000, true, false, true},
		{100_000, false, true, true},
		{1_000_000, true, true, true},
		{1_000_000, true, false, true},
		{1_000_000, false, true, true},
	} {
		name := fmt.Sprintf("keys=%d/dirty=%v/sync=%v", bc.keys, bc.dirty, bc.sync)
		b.Run(name, func(b *testing.B) {
			skipLarge(b, bc.large)
			path := b.TempDir() + "/bench.db"
			s := mustOpen(b, path, persist.Options{})
			if bc.sync {
				// mustOpen skips fsync; open again with it.
				mustClose(b, s)
				var err error
				s, err = persist.Open(path, persist.Options{CheckpointInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
			}
			set := benchSet(b, bc.keys)
			before := heap()
			if err := persist.AttachKeyed(s, "orgs", set, persist.StringKey{}); err != nil {
				b.Fatal(err)
			}
			if err := s.Checkpoint(); err != nil {
				b.Fatal(err)
			}
			side := float64(heap()-before) / float64(bc.keys)
			var cpu time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if bc.dirty {
					b.StopTimer()
					for _, l := range set.All() {
						l.Take(t0, 1)
					}
					b.StartTimer()
				}
				c0 := cpuTime()
				if err := s.Checkpoint(); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c0
			}
			b.StopTimer()
			reportCPU(b, cpu)
			b.ReportMetric(side, "side-B/key")
			s.Close()
			reportDisk(b, path, bc.keys)
		})
	}
}

// BenchmarkRestore measures Open and AttachKeyed of a file of a set of keys.
func BenchmarkRestore(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			skipLarge(b, keys >= 1_000_000)
			path := b.TempDir() + "/bench.db"
			s := mustOpen(b, path, persist.Options{})
			set := benchSet(b, keys)
			persist.AttachKeyed(s, "orgs", set, persist.StringKey{})
			mustClose(b, s)
			set = nil
			var cpu time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c0 := cpuTime()
				s, err := persist.Open(path, persist.Options{CheckpointInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				set := rollingSet(b, wide(1<<40), 1000*time.Hour)
				if err := persist.AttachKeyed(s, "orgs", set, persist.StringKey{}); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c0
				b.StopTimer()
				if set.Len() != keys {
					b.Fatalf("restored %d keys, want %d", set.Len(), keys)
				}
				persist.Abandon(s)
				b.StartTimer()
			}
			b.StopTimer()
			reportCPU(b, cpu)
			reportDisk(b, path, keys)
		})
	}
}
