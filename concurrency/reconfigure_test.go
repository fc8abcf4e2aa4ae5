package concurrency_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ratekit/ratekit"
	"github.com/ratekit/ratekit/concurrency"
)

// TestReconfigureTornPolicy is the defect internal/lincheck found: a Take
// racing Reconfigure(b) from a returned a Decision mixing the two configs
// (allowed, Limit 5 of a, Policy "b"), because Take read the Name apart
// from the state word holding the Limit, and Reconfigure stored the Name
// before it changed the Limit. Every Decision must be of one config: Take
// and Peek run here at the point inside Reconfigure where it has published
// part of the new config and not all of it.
func TestReconfigureTornPolicy(t *testing.T) {
	a := concurrency.Config{Limit: 5, Name: "a"}
	b := concurrency.Config{Limit: 3, Name: "b"}
	for _, tc := range []struct {
		name     string
		from, to concurrency.Config
	}{{"lower", a, b}, {"raise", b, a}} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := concurrency.New(tc.from)
			require.NoError(t, err)
			limitOf := map[string]int{a.Name: a.Limit, b.Name: b.Limit}
			consistent := func(what string, d ratekit.Decision) {
				t.Helper()
				require.Contains(t, limitOf, d.Policy, "%s: %+v", what, d)
				require.Equal(t, limitOf[d.Policy], d.Limit, "%s mixes configs: %+v", what, d)
			}
			var during []ratekit.Decision
			defer concurrency.SetReconfigureHook(func() {
				p := l.Peek(t0, 2)
				d := l.Take(t0, 2)
				if d.Allowed {
					l.Release(2)
				}
				during = append(during, p, d)
			})()
			require.NoError(t, l.Reconfigure(tc.to))
			require.Len(t, during, 2, "the hook did not run")
			consistent("Peek during Reconfigure", during[0])
			consistent("Take during Reconfigure", during[1])
			require.Equal(t, during[0], during[1], "Peek and Take during Reconfigure disagree")
			after := l.Take(t0, 2)
			consistent("Take after Reconfigure", after)
			require.Equal(t, tc.to.Name, after.Policy)
			require.Equal(t, uint64(0), l.RejectedReleases())
		})
	}
}
