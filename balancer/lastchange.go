package balancer

import "time"

// LastChange is when the server's state last changed: its administrative
// state (SetState), its health (active checks, a passive check's
// ejection), or else when the pool was built. A config reload keeps it
// for a server whose state the reload leaves as it was (Adopt). The stats
// page's "last change" and HAProxy's lastchg are the time since.
func (s *Server) LastChange() time.Time { return time.Unix(0, s.changed.Load()) }

func (s *Server) markChanged() {
	now := time.Now
	if s.pool != nil {
		now = s.pool.now
	}
	s.changed.Store(now().UnixNano())
}
