package alert

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand, so that the dispatcher's
// real ticks find windows open or ended exactly when the test says.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// quiet checks that the receiver gets nothing more over several real ticks.
func quiet(t *testing.T, r *receiver, calls int, why string) {
	t.Helper()
	time.Sleep(120 * time.Millisecond) // ~5 ticks of a 100ms window
	if n := len(r.snapshot()); n != calls {
		t.Fatalf("%d calls, want %d: %s", n, calls, why)
	}
}

// A window aggregates: the first event of a key goes out at once, its
// repeats are held for as long as the window is open, however many ticks
// pass, and go out as one summary (count, first and last times) once it
// has ended; the next window does the same; a window with no repeat ends
// the key, whose next event goes out at once again.
func TestWindowAggregates(t *testing.T) {
	const window = 100 * time.Millisecond
	clock := &fakeClock{}
	clock.ns.Store(int64(time.Hour))
	r := newReceiver(t)
	d := start(t, Config{Window: window, Endpoints: []Endpoint{{Name: "soc", URL: r.URL}}}, Options{Now: clock.now})

	t0 := clock.now()
	d.Emit(blocked("203.0.113.7"))
	r.wait(t, 1)
	for range 9 {
		clock.add(5 * time.Millisecond)
		d.Emit(blocked("203.0.113.7"))
	}
	quiet(t, r, 1, "the repeats went out while their window was open")
	clock.add(window - 45*time.Millisecond - time.Nanosecond)
	quiet(t, r, 1, "the repeats went out a nanosecond before their window ended")
	clock.add(time.Nanosecond) // the window has ended
	r.wait(t, 1)
	as := r.alerts(t)
	if a := as[1]; a.Count != 9 || !a.First.Equal(t0.Add(5*time.Millisecond)) || !a.Last.Equal(t0.Add(45*time.Millisecond)) {
		t.Fatalf("summary: count %d, first %s, last %s; want 9, t0+5ms, t0+45ms", a.Count, a.First.Sub(t0), a.Last.Sub(t0))
	}

	// The summary opened the next window: three repeats wait for its end.
	for range 3 {
		clock.add(10 * time.Millisecond)
		d.Emit(blocked("203.0.113.7"))
	}
	quiet(t, r, 2, "the next window's repeats went out before it ended")
	clock.add(window - 30*time.Millisecond)
	r.wait(t, 1)
	if a := r.alerts(t)[2]; a.Count != 3 {
		t.Fatalf("next summary: count %d, want 3", a.Count)
	}

	// A window with nothing in it ends the key: no empty summary, and the
	// next event is a first one, sent at once.
	clock.add(window)
	quiet(t, r, 3, "an empty window sent a summary")
	d.Emit(blocked("203.0.113.7"))
	r.wait(t, 1)
	if a := r.alerts(t)[3]; a.Count != 1 {
		t.Fatalf("after a quiet window: count %d, want 1 (sent at once)", a.Count)
	}
}
