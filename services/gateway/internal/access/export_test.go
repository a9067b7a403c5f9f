package access

// Hold takes every hash slot until release: a login that reaches the
// password check waits, one refused before it does not.
func (h *Hasher) Hold() (release func()) {
	for range cap(h.sem) {
		h.sem <- struct{}{}
	}
	return func() {
		for range cap(h.sem) {
			<-h.sem
		}
	}
}
