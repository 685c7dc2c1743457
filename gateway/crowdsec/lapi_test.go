package crowdsec

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/sekisho/sekisho/gateway/crowdsec/crowdsectest"
)

// TestRealLAPI follows decisions made with cscli on a real CrowdSec Local
// API, Debian's crowdsec package, run with a configuration of the test's own.
func TestRealLAPI(t *testing.T) {
	lapi := crowdsectest.Start(t)
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var errs errorLog
	b := &Bouncer{URL: lapi.URL, APIKey: lapi.Key, Interval: 200 * time.Millisecond, OnError: errs.add}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	lapi.CSCLI(t, "decisions", "add", "--ip", "198.51.100.7", "--duration", "1h", "--type", "ban")
	lapi.CSCLI(t, "decisions", "add", "--range", "203.0.113.0/24", "--duration", "1h", "--type", "captcha")
	made := time.Now()
	waitFor(t, "the LAPI's decisions", func() bool {
		return typeOf(b, "198.51.100.7") == "ban" && typeOf(b, "203.0.113.77") == "captcha"
	})
	seen := time.Since(made)
	d, _ := b.Decision(netip.MustParseAddr("198.51.100.7"))
	if d.Origin != "cscli" || time.Until(d.Until) < 55*time.Minute || time.Until(d.Until) > time.Hour {
		t.Errorf("198.51.100.7: %+v, want a decision of cscli's for about an hour", d)
	}
	expect(t, b, map[string]string{"::ffff:198.51.100.7": "ban", "203.0.114.1": "", "198.51.100.8": ""})

	lapi.CSCLI(t, "decisions", "delete", "--ip", "198.51.100.7")
	deleted := time.Now()
	waitFor(t, "the deleted decision to go", func() bool { return typeOf(b, "198.51.100.7") == "" })
	gone := time.Since(deleted)
	expect(t, b, map[string]string{"203.0.113.77": "captcha"})

	// A bouncer starting now gets the full list, which the deletion left out
	// (the LAPI lists it among the deleted, which a full list ignores).
	fresh := &Bouncer{URL: b.URL, APIKey: lapi.Key, Interval: time.Hour, OnError: errs.add}
	if err := fresh.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fresh.Close()
	expect(t, fresh, map[string]string{"198.51.100.7": "", "203.0.113.77": "captcha"})
	if e := errs.all(); len(e) > 0 {
		t.Errorf("errors reported: %v", e)
	}
	t.Logf("crowdsec LAPI up in %v (config, bouncer and machine registered, started, answering); decisions seen %v after cscli made them, deletion %v after; %v in all",
		lapi.Startup.Round(time.Millisecond), seen.Round(time.Millisecond), gone.Round(time.Millisecond), (lapi.Startup + time.Since(began)).Round(time.Millisecond))
}
