package server

// SetAfterVerify makes s call f between a login's password check and its
// registration, so a test can change the world at that exact point.
func SetAfterVerify(s *Server, f func(name string)) { s.afterVerify.Store(&f) }
