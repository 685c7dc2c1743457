package challenge

import "fmt"

// Mode is what a challenge asks of a client.
type Mode string

// The modes, from the strongest clearance to the weakest.
const (
	ModePoW    Mode = "pow"    // a proof of work in a script
	ModeJS     Mode = "js"     // a script must run (a token-sized proof of work)
	ModeCookie Mode = "cookie" // a cookie must be kept across a redirect
	ModeStatus Mode = "429"    // no page: 429 without a clearance (API clients)
)

// jsDifficulty is the js mode's work: a few dozen hashes, nothing a
// browser notices, but a client that runs no script cannot answer.
const jsDifficulty = 4

// MaxDifficulty bounds pow: 2^24 hashes take a browser tens of seconds.
const MaxDifficulty = 24

// code orders the modes: a clearance earned with a higher code satisfies a
// rule asking for a lower one.
func (m Mode) code() byte {
	switch m {
	case ModePoW:
		return 3
	case ModeJS:
		return 2
	case ModeCookie:
		return 1
	}
	return 0
}

func modeOf(b byte) (Mode, bool) {
	for _, m := range []Mode{ModePoW, ModeJS, ModeCookie} {
		if m.code() == b {
			return m, true
		}
	}
	return "", false
}

// satisfies reports whether a clearance earned with m is enough for want.
func (m Mode) satisfies(want Mode) bool { return m.code() >= want.code() }

// Rule is a route's challenge.
type Rule struct {
	Mode       Mode
	Difficulty int // pow: leading zero bits of the hash; 0: DefaultDifficulty
}

// DefaultDifficulty is pow's work by default: 2^16 hashes on average,
// well under a second in a browser.
const DefaultDifficulty = 16

// Validate checks a rule as a config would give it.
func (r Rule) Validate() error {
	switch r.Mode {
	case ModePoW, ModeJS, ModeCookie, ModeStatus:
	default:
		return fmt.Errorf("mode %q: pow, js, cookie or 429", r.Mode)
	}
	if r.Difficulty < 0 || r.Difficulty > MaxDifficulty {
		return fmt.Errorf("difficulty %d: 1 to %d (leading zero bits)", r.Difficulty, MaxDifficulty)
	}
	return nil
}

// difficulty is the work a token of this rule asks.
func (r Rule) difficulty() int {
	switch {
	case r.Mode == ModeJS:
		return jsDifficulty
	case r.Mode != ModePoW:
		return 0
	case r.Difficulty == 0:
		return DefaultDifficulty
	}
	return r.Difficulty
}
