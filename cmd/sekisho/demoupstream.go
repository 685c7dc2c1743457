package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sekisho/sekisho/gateway/demo"
)

// cmdDemoUpstream serves one demo application server on its own, the
// stand-in for an application in docker-compose.yml and the e2e topology
// test, so the stack needs no image besides sekisho's and Redis's.
func cmdDemoUpstream(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8080", "address to listen on")
	name := fs.String("name", "app1", "the name it answers with")
	cookie := fs.String("session-cookie", "", "hand out this session cookie (e.g. JSESSIONID) to requests without it")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "sekisho demo-upstream: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "demo upstream %s listening on %s\n", *name, ln.Addr())
	srv := &http.Server{Handler: demo.Handler(*name, *cookie), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "sekisho demo-upstream: %v\n", err)
		return 1
	}
	return 0
}
