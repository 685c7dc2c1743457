package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// defaultHealthURL is the admin listener's readiness, where the image's
// HEALTHCHECK looks when it is not told otherwise.
const defaultHealthURL = "http://127.0.0.1:9901/readyz"

// cmdHealth probes a readiness URL and exits 0 when it answers 2xx, 1
// otherwise: the container HEALTHCHECK of an image that has no shell or
// curl (distroless), so the binary checks itself.
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", defaultHealthURL, "readiness URL to GET")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get(*url)
	if err != nil {
		fmt.Fprintf(stderr, "sekisho health: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 != 2 {
		fmt.Fprintf(stderr, "sekisho health: %s: %s: %s", *url, resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}
