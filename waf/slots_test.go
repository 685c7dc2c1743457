package waf

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf/waftest"
)

var conn = Conn{ClientIP: "192.0.2.10", ClientPort: 40000, ServerIP: "127.0.0.1", ServerPort: 443}

// A request whose client leaves while every inspection slot is busy is
// given up, not inspected later.
func TestInspectionSlots_ClientGone(t *testing.T) {
	e, err := New(Config{Name: "default"}, rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	for range cap(inspectSlots) {
		inspectSlots <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Verdict)
	tx := e.NewTx(ctx, "gone")
	go func() {
		r := waftest.BrowserGET(1)
		done <- tx.InspectRequest(r, r.URL.RequestURI(), conn)
	}()
	select {
	case v := <-done:
		t.Fatalf("inspected with no free slot: %+v", v)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	v := <-done
	if v.Action != ActionError || !errors.Is(tx.Err(), ErrClientGone) {
		t.Errorf("verdict %+v, err %v; want an error verdict for a client that went away", v, tx.Err())
	}
	tx.Close()
	for range cap(inspectSlots) {
		<-inspectSlots
	}

	// With the slots free again, many requests at once all get their verdict.
	var wg sync.WaitGroup
	for i := range 4 * cap(inspectSlots) {
		wg.Go(func() {
			r := waftest.FormPOST4K(i)
			tx := e.NewTx(context.Background(), "ok")
			defer tx.Close()
			if v := tx.InspectRequest(r, r.URL.RequestURI(), conn); v.Action != ActionPass {
				t.Errorf("request %d: %+v (%v)", i, v, tx.Err())
			}
		})
	}
	wg.Wait()
	if len(inspectSlots) != 0 {
		t.Errorf("%d inspection slots still held", len(inspectSlots))
	}
}
