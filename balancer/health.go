package balancer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HealthConfig is a backend's active health check, run against each server.
type HealthConfig struct {
	// Type is "http", "tcp" (connect, then close), "tcp_half_open" (SYN,
	// SYN-ACK, RST: the server's application sees no connection; needs
	// CAP_NET_RAW) or "exec".
	Type string `yaml:"type"`
	// Fallback is "tcp" to run tcp checks when tcp_half_open is not
	// permitted; without it, the gateway refuses to start.
	Fallback string `yaml:"fallback"`
	// Interval is the time between checks of a server that is up;
	// DownInterval of one that is down (default Interval).
	Interval     time.Duration `yaml:"interval"`
	DownInterval time.Duration `yaml:"down_interval"`
	// Timeout bounds one check.
	Timeout time.Duration `yaml:"timeout"`
	// Rise successes in a row bring a down server up; Fall failures in a
	// row take an up server down.
	Rise int `yaml:"rise"`
	Fall int `yaml:"fall"`
	// HTTP is the request an "http" check sends.
	HTTP HTTPCheck `yaml:"http"`
	// Command is an "exec" check: run with the server's host and port as
	// its last two arguments, never through a shell; exit 0 means up.
	Command []string `yaml:"command"`
}

// HTTPCheck is an HTTP health check request and what its answer must be.
type HTTPCheck struct {
	Method string `yaml:"method"` // default GET
	Path   string `yaml:"path"`   // default /
	Host   string `yaml:"host"`   // Host header; default the server's address
	// ExpectStatus are ranges such as "200-399" (the default) or "204".
	ExpectStatus []string `yaml:"expect_status"`
	// BodyContains, when set, must appear in the first 64 KiB of the body.
	BodyContains string `yaml:"body_contains"`
}

// SetDefaults fills what a health check leaves out (HAProxy's defaults:
// 2 s interval, rise 2, fall 3).
func (h *HealthConfig) SetDefaults() {
	if h.Interval == 0 {
		h.Interval = 2 * time.Second
	}
	if h.DownInterval == 0 {
		h.DownInterval = h.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = min(h.Interval, 2*time.Second)
	}
	if h.Rise == 0 {
		h.Rise = 2
	}
	if h.Fall == 0 {
		h.Fall = 3
	}
	if h.HTTP.Method == "" {
		h.HTTP.Method = http.MethodGet
	}
	if h.HTTP.Path == "" {
		h.HTTP.Path = "/"
	}
	if len(h.HTTP.ExpectStatus) == 0 {
		h.HTTP.ExpectStatus = []string{"200-399"}
	}
}

// Validate reports every problem, each as "key: message".
func (h *HealthConfig) Validate() error {
	var errs []error
	switch h.Type {
	case "http", "tcp", "tcp_half_open":
	case "exec":
		if len(h.Command) == 0 {
			errs = append(errs, errors.New("health_check.command: an exec check needs a command"))
		}
	default:
		errs = append(errs, fmt.Errorf("health_check.type: %q is not http, tcp, tcp_half_open or exec", h.Type))
	}
	if h.Fallback != "" && (h.Fallback != "tcp" || h.Type != "tcp_half_open") {
		errs = append(errs, fmt.Errorf("health_check.fallback: %q: only tcp, for tcp_half_open", h.Fallback))
	}
	if h.Interval < 0 || h.DownInterval < 0 || h.Timeout < 0 || h.Rise < 0 || h.Fall < 0 {
		errs = append(errs, errors.New("health_check: interval, down_interval, timeout, rise and fall must not be negative"))
	}
	for i, r := range h.HTTP.ExpectStatus {
		if _, _, err := statusRange(r); err != nil {
			errs = append(errs, fmt.Errorf("health_check.http.expect_status[%d]: %w", i, err))
		}
	}
	if !strings.HasPrefix(h.HTTP.Path, "/") {
		errs = append(errs, fmt.Errorf("health_check.http.path: %q must start with /", h.HTTP.Path))
	}
	return errors.Join(errs...)
}

func statusRange(r string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(r, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(b)
	}
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return 0, 0, fmt.Errorf("%q is not a status or a range such as 200-399", r)
	}
	return lo, hi, nil
}

// HealthEvent is a server's change of health, for logs and webhooks.
type HealthEvent struct {
	Backend, Server string
	Up              bool
	Reason          string // the last check's result
}

// checker runs one backend's health checks.
type checker struct {
	pool   *Pool
	cfg    HealthConfig
	client *http.Client
}

// PrepareHealthChecks makes sure the checks can run: a tcp_half_open check
// that may not open raw sockets falls back to tcp when so configured, and
// is an error otherwise. It returns a note for the log when it fell back.
func (p *Pool) PrepareHealthChecks() (string, error) {
	if p.health == nil || p.health.Type != "tcp_half_open" {
		return "", nil
	}
	err := CanHalfOpen()
	switch {
	case err == nil:
		return "", nil
	case p.health.Fallback == "tcp":
		p.health.Type = "tcp"
		return fmt.Sprintf("tcp_half_open is not permitted (%v): checking with tcp connects instead", err), nil
	}
	return "", fmt.Errorf("backend %q: health_check tcp_half_open needs CAP_NET_RAW (run as root, or setcap cap_net_raw+ep on the binary, or add the capability to the container), or set fallback: tcp: %w", p.Name, err)
}

// RunHealthChecks checks every server of the pool until ctx ends, taking
// servers down after Fall failures and up after Rise successes, and feeds
// check times into least_response_time. OnEvent's function hears every change.
func (p *Pool) RunHealthChecks(ctx context.Context) {
	if p.health == nil {
		return
	}
	c := &checker{pool: p, cfg: *p.health, client: &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		// A redirect is an answer, not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for _, s := range p.servers {
		go c.run(ctx, s)
	}
}

func (c *checker) run(ctx context.Context, s *Server) {
	streak := 0 // successes (>0) or failures (<0) in a row
	down := s.down.Load()
	for {
		wait := c.cfg.Interval
		if s.down.Load() {
			wait = c.cfg.DownInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		start := time.Now()
		err := c.check(ctx, s)
		if ctx.Err() != nil {
			return
		}
		r := &CheckResult{At: start, Took: time.Since(start)}
		if err != nil {
			r.Err = err.Error()
		}
		s.lastCheck.Store(r)
		if f := c.pool.onCheck.Load(); f != nil {
			(*f)(s, *r)
		}
		if d := s.down.Load(); d != down {
			streak, down = 0, d // a passive check took it down: Rise good checks from here
		}
		if err == nil {
			s.ObserveLatency(time.Since(start))
			streak = max(streak, 0) + 1
			if down && streak >= c.cfg.Rise {
				s.SetDown(false)
				down = false
				c.report(s, true, "check passed")
			}
		} else {
			streak = min(streak, 0) - 1
			if !down && -streak >= c.cfg.Fall {
				s.SetDown(true)
				down = true
				c.report(s, false, err.Error())
			}
		}
	}
}

// CheckResult is one active health check's outcome.
type CheckResult struct {
	At   time.Time
	Took time.Duration
	Err  string // "" when the check passed
}

// OnCheck sets the function that hears every active check's result (the
// metrics' way in); it runs on the checking goroutine, so it must be quick.
func (p *Pool) OnCheck(f func(*Server, CheckResult)) { p.onCheck.Store(&f) }

// LastCheck is the server's last active check, or nil before the first.
func (s *Server) LastCheck() *CheckResult { return s.lastCheck.Load() }

func (c *checker) report(s *Server, up bool, reason string) {
	c.pool.emit(HealthEvent{Server: s.Name, Up: up, Reason: reason})
}

func (c *checker) check(ctx context.Context, s *Server) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	switch c.cfg.Type {
	case "tcp":
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Address)
		if err != nil {
			return err
		}
		return conn.Close()
	case "tcp_half_open":
		return halfOpen(ctx, s.Address)
	case "exec":
		return c.exec(ctx, s)
	}
	return c.http(ctx, s)
}

func (c *checker) http(ctx context.Context, s *Server) error {
	h := c.cfg.HTTP
	req, err := http.NewRequestWithContext(ctx, h.Method, "http://"+s.Address+h.Path, nil)
	if err != nil {
		return err
	}
	if h.Host != "" {
		req.Host = h.Host
	}
	req.Header.Set("User-Agent", "sekisho-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	ok := false
	for _, r := range h.ExpectStatus {
		lo, hi, _ := statusRange(r)
		ok = ok || lo <= resp.StatusCode && resp.StatusCode <= hi
	}
	if !ok {
		return fmt.Errorf("status %d, want %s", resp.StatusCode, strings.Join(h.ExpectStatus, ","))
	}
	if h.BodyContains != "" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if !bytes.Contains(body, []byte(h.BodyContains)) {
			return fmt.Errorf("body lacks %q", h.BodyContains)
		}
	}
	return nil
}

// exec runs the command with the server's host and port, killed at the
// timeout; at most 4 KiB of its output is kept, for the reason.
func (c *checker) exec(ctx context.Context, s *Server) error {
	host, port, _ := net.SplitHostPort(s.Address)
	args := append(append([]string(nil), c.cfg.Command[1:]...), host, port)
	cmd := exec.CommandContext(ctx, c.cfg.Command[0], args...)
	// The command's own children go with it at the timeout, and their
	// pipes are not waited on past a second.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(out.b.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

// limitedBuffer keeps the first 4 KiB written to it and drops the rest.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4<<10 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
