package balancer

import (
	"errors"
	"fmt"
	"time"
)

// PassiveConfig takes a server out on what real requests meet, between
// active checks (nginx's max_fails, Envoy's outlier detection): after
// Failures connect failures or timeouts in a row, or HTTP5xx 5xx
// responses in a row, the server rests for CoolDown. After it, active
// checks bring it back (Rise good checks); without active checks it gets a
// trial: the next request goes to it, and one more failure sends it back
// to rest.
type PassiveConfig struct {
	Failures int           `yaml:"failures"` // default 3
	HTTP5xx  int           `yaml:"http_5xx"` // 0: 5xx responses are not counted
	CoolDown time.Duration `yaml:"cool_down"`
}

func (c *PassiveConfig) setDefaults() {
	if c.Failures == 0 {
		c.Failures = 3
	}
	if c.CoolDown == 0 {
		c.CoolDown = 30 * time.Second
	}
}

func (c *PassiveConfig) validate() error {
	if c.Failures < 0 || c.HTTP5xx < 0 || c.CoolDown < 0 {
		return errors.New("passive_check: failures, http_5xx and cool_down must not be negative")
	}
	return nil
}

// Outcome is what happened to a request on a server, for passive checks.
type Outcome int

// The outcomes a passive check counts.
const (
	Answered      Outcome = iota // a response that is not a 5xx
	ConnectFailed                // no connection could be made
	TimedOut                     // no response in time, or the connection broke
	ServerError                  // a 5xx response
)

// Observe feeds a request's outcome on s to the pool's passive checks.
// reason describes a failure for the log.
func (p *Pool) Observe(s *Server, o Outcome, reason string) {
	c := p.passive
	if c == nil {
		return
	}
	switch o {
	case Answered:
		// Loads first: most requests succeed and need not write shared lines.
		if s.netFails.Load() != 0 {
			s.netFails.Store(0)
		}
		if s.serverErrs.Load() != 0 {
			s.serverErrs.Store(0)
		}
	case ConnectFailed, TimedOut:
		if n := s.netFails.Add(1); int(n) >= c.Failures {
			p.eject(s, fmt.Sprintf("passive check: %d connect failures or timeouts in a row, the last: %s", n, reason))
		}
	case ServerError:
		s.netFails.Store(0)
		if n := s.serverErrs.Add(1); c.HTTP5xx > 0 && int(n) >= c.HTTP5xx {
			p.eject(s, fmt.Sprintf("passive check: %d 5xx responses in a row, the last: %s", n, reason))
		}
	}
}

// eject rests s for the cool-down. Its counters stay one short of the
// threshold, so a failed trial after the cool-down sends it back at once.
func (p *Pool) eject(s *Server, reason string) {
	now := p.now().UnixNano()
	until := s.ejectedUntil.Load()
	if now < until || !s.ejectedUntil.CompareAndSwap(until, now+int64(p.passive.CoolDown)) {
		return // resting already, or another request ejected it just now
	}
	s.netFails.Store(int32(p.passive.Failures - 1))
	if p.passive.HTTP5xx > 0 {
		s.serverErrs.Store(int32(p.passive.HTTP5xx - 1))
	}
	if p.health != nil {
		// Active checks decide when it is back: Rise good checks, after the cool-down.
		s.down.Store(true)
	}
	p.emit(HealthEvent{Server: s.Name, Up: false, Reason: reason + fmt.Sprintf("; out for %s", p.passive.CoolDown)})
}
