package persist

// SetOnCommit makes s call f after each transaction a checkpoint commits.
func SetOnCommit(s *Store, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onCommit = f
}

// Abandon closes s's file without a last checkpoint, as if the process had
// died: what the file holds is what the last checkpoints wrote.
func Abandon(s *Store) error {
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}
