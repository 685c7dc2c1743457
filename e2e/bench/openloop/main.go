// Command openloop sends requests at a fixed rate, whatever the server's
// speed, and reports latency percentiles measured from when each request was
// due, so that a slow reply delays no later request's clock (no coordinated
// omission, unlike a closed-loop tool such as wrk). It compares proxies'
// latency at the same offered load:
//
//	openloop -url http://127.0.0.1:19250/api/orders -method POST -body body.json \
//	  -header 'Content-Type: application/json' -rate 1500 -duration 10s
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// headers are the -header flags, in order.
type headers []string

// String implements flag.Value.
func (h *headers) String() string { return strings.Join(*h, ", ") }

// Set implements flag.Value.
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	url := flag.String("url", "", "request URL")
	method := flag.String("method", "GET", "request method")
	bodyFile := flag.String("body", "", "file holding the request body")
	rate := flag.Int("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 64, "connections, and so requests in flight, at most")
	var hdrs headers
	flag.Var(&hdrs, "header", "a request header, 'Name: value' (repeatable)")
	flag.Parse()
	if *url == "" || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "openloop: -url and a positive -rate are required")
		os.Exit(2)
	}
	var body []byte
	if *bodyFile != "" {
		var err error
		if body, err = os.ReadFile(*bodyFile); err != nil {
			fmt.Fprintln(os.Stderr, "openloop:", err)
			os.Exit(2)
		}
	}
	client := &http.Client{Transport: &http.Transport{
		MaxConnsPerHost: *conns, MaxIdleConnsPerHost: *conns, DisableCompression: true,
	}}
	n := int(float64(*rate) * duration.Seconds())
	if n < 1 {
		fmt.Fprintln(os.Stderr, "openloop: -rate x -duration sends no request")
		os.Exit(2)
	}
	interval := time.Second / time.Duration(*rate)
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	slots := make(chan struct{}, *conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		slots <- struct{}{} // a full pipe delays this request: its wait counts
		wg.Add(1)
		go func(i int, due time.Time) {
			defer func() { <-slots; wg.Done() }()
			req, _ := http.NewRequest(*method, *url, bytes.NewReader(body))
			for _, h := range hdrs {
				k, v, ok := strings.Cut(h, ":")
				switch k, v = strings.TrimSpace(k), strings.TrimSpace(v); {
				case !ok:
				case strings.EqualFold(k, "Host"):
					req.Host = v // Go sends req.Host, not a Host header
				default:
					req.Header.Set(k, v)
				}
			}
			resp, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				failed[i] = resp.StatusCode >= 300
			} else {
				failed[i] = true
			}
			lat[i] = time.Since(due)
		}(i, due)
	}
	wg.Wait()
	nfail := 0
	for _, f := range failed {
		if f {
			nfail++
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[min(n-1, int(p*float64(n)))].Microseconds()) / 1000 }
	fmt.Printf("requests %d failed %d rate %d/s p50 %.2fms p90 %.2fms p99 %.2fms p99.9 %.2fms max %.2fms\n",
		n, nfail, *rate, q(0.50), q(0.90), q(0.99), q(0.999), q(1))
}
