package faketelegram

// PollHeld reports whether a getUpdates request is being held, so tests
// can act on a long poll without sleeping.
func (s *Server) PollHeld() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.poll != nil
}
