package httpclient

// Hosts returns how many hosts' pacing states t keeps, for tests of the
// MaxHosts bound.
func (t *Transport) Hosts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.hosts)
}
