// Command sekisho is the WAF-integrated security gateway.
//
//	sekisho run -c FILE        serve the configuration in FILE
//	sekisho validate -c FILE   check FILE and exit non-zero on problems
//	sekisho demo               serve an embedded demo (no file, no network)
//	sekisho health [-url URL]  exit 0 when a readiness URL answers 2xx
//	sekisho version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/gateway"
	"github.com/sekisho/sekisho/gateway/accesslog"
	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/demo"
	"github.com/sekisho/sekisho/gateway/sdnotify"
	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `sekisho: a WAF-integrated security gateway (Coraza + OWASP CRS v4)

usage:
  sekisho run -c FILE        serve the configuration in FILE until SIGINT/SIGTERM
  sekisho validate -c FILE   check FILE; print FILE:LINE: key: problem and exit 1 if bad
  sekisho demo [flags]       serve an embedded demo on loopback (see -h)
  sekisho rules test ...     replay requests through a rules folder offline (see rules test -h)
  sekisho ctl ...            talk to a running gateway's admin API (backends, state, reload, tls)
  sekisho health [-url URL]  GET a readiness URL (default http://127.0.0.1:9901/readyz); exit 0 if 2xx
  sekisho demo-upstream ...  serve one demo application server (-addr, -name, -session-cookie)
  sekisho version            print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "rules":
		return cmdRules(args[1:], stdout, stderr)
	case "ctl":
		return cmdCtl(args[1:], stdout, stderr)
	case "health":
		return cmdHealth(args[1:], stdout, stderr)
	case "demo-upstream":
		return cmdDemoUpstream(args[1:], stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "sekisho %s\n", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sekisho: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/corazawaf/coraza-coreruleset/v4" {
				v += " (CRS " + d.Version + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

// loadConfig reads the -c FILE flag and loads that file. On failure it has
// told the user why and returns the exit code (2 usage, 1 bad file).
func loadConfig(name string, args []string, stderr io.Writer) (string, *config.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return "", nil, 2
	}
	if *path == "" {
		fmt.Fprintf(stderr, "sekisho %s: -c FILE is required\n", name)
		return "", nil, 2
	}
	c, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return *path, nil, 1
	}
	return *path, c, 0
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	path, c, code := loadConfig("validate", args, stderr)
	if c == nil {
		return code
	}
	// Compile every policy (run compiles only those in use) and load the
	// certificates: what run would do, short of binding.
	for _, p := range c.WAF.Policies {
		if _, err := waf.New(p, rules.FS()); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			return 1
		}
	}
	// Offline: a config check dials no Redis (CI, a host without access).
	if _, err := gateway.New(c, gateway.Options{Log: zerolog.Nop(), Offline: true}); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	path, c, code := loadConfig("run", args, stderr)
	if c == nil {
		return code
	}
	return serve(c, path, stdout, stderr, nil)
}

// serve runs a gateway for c until SIGINT/SIGTERM; ready, if set, runs once
// it listens. With path, SIGHUP reloads the config from it.
func serve(c *config.Config, path string, stdout, stderr io.Writer, ready func(*gateway.Gateway)) int {
	log := zerolog.New(stderr).With().Timestamp().Logger().Level(levels[c.Log.Level])
	access, closeAccess, reopenAccess, err := accessWriter(c.Log.Access, stdout, stderr)
	if err != nil {
		log.Error().Err(err).Msg("opening access log")
		return 1
	}
	defer closeAccess()
	o := gateway.Options{Log: log, Access: access}
	gateway.Version = versionString() // for the stats page and sekisho_build_info
	if path != "" {
		o.LoadConfig = func() (*config.Config, error) { return config.Load(path) }
	}
	g, err := gateway.New(c, o)
	if err != nil {
		log.Error().Err(err).Msg("building gateway")
		return 1
	}
	if err := g.Listen(); err != nil {
		log.Error().Err(err).Msg("binding")
		return 1
	}
	if ready != nil {
		ready(g)
	}
	// Type=notify units become active now that every listener is bound.
	if err := sdnotify.Ready(); err != nil {
		log.Warn().Err(err).Msg("telling systemd the gateway is ready")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the config file and the WAF rules folders (their
	// changes are also picked up within a second on their own). A reload
	// that fails has logged why and leaves the old config serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGUSR1 reopens the access log file, for logrotate.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	stopping := make(chan struct{}) // closed once systemd was told STOPPING=1
	go func() {
		for {
			select {
			case <-hup:
				// systemd shows the unit reloading until READY=1 again.
				sdnotify.Reloading()
				g.Reload()
				sdnotify.Ready()
			case <-usr1:
				if err := reopenAccess(); err != nil {
					log.Error().Err(err).Msg("reopening the access log")
				} else {
					log.Info().Msg("access log reopened")
				}
			case <-ctx.Done():
				sdnotify.Stopping()
				close(stopping)
				return
			}
		}
	}()
	err = g.Run(ctx)
	if ctx.Err() != nil {
		<-stopping // the drain may end before the goroutine above had its turn
	}
	if err != nil {
		log.Error().Err(err).Msg("gateway stopped")
		return 1
	}
	return 0
}

// displayAddr names loopback as localhost: CRS scores a numeric Host header
// (rule 920350), and the demo's URLs should show a clean pass.
func displayAddr(addr string) string {
	if strings.HasPrefix(addr, "127.0.0.1:") {
		return "localhost" + strings.TrimPrefix(addr, "127.0.0.1")
	}
	return addr
}

var levels = map[string]zerolog.Level{"debug": zerolog.DebugLevel, "info": zerolog.InfoLevel, "warn": zerolog.WarnLevel, "error": zerolog.ErrorLevel}

// accessWriter opens where access log lines go: stdout, stderr, off, a
// file (reopened by reopen, on SIGUSR1, after logrotate moved it), or
// syslog (syslog+udp://, syslog+tcp://, syslog+unix://).
func accessWriter(dest string, stdout, stderr io.Writer) (w io.Writer, closeFn func(), reopen func() error, err error) {
	none := func() error { return nil }
	switch dest {
	case "stdout":
		return stdout, func() {}, none, nil
	case "stderr":
		return stderr, func() {}, none, nil
	case "off":
		return nil, func() {}, none, nil
	}
	if strings.HasPrefix(dest, "syslog+") {
		s, err := accesslog.OpenSyslog(dest)
		if err != nil {
			return nil, nil, nil, err
		}
		return s, func() { s.Close() }, none, nil
	}
	f, err := accesslog.OpenFile(dest)
	if err != nil {
		return nil, nil, nil, err
	}
	return f, func() { f.Close() }, f.Reopen, nil
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "127.0.0.1:8080", "plain HTTP address")
	httpsAddr := fs.String("https", "127.0.0.1:8443", "HTTPS address, TCP and UDP (HTTP/3), self-signed certificate")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ups, err := demo.StartUpstreams(2)
	if err != nil {
		fmt.Fprintf(stderr, "sekisho demo: starting upstreams: %v\n", err)
		return 1
	}
	defer ups.Close()
	c, err := config.Parse("demo.yaml (embedded)", demo.Config(*httpAddr, *httpsAddr, ups.Addrs))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return serve(c, "", stdout, stderr, func(g *gateway.Gateway) {
		addrs := g.Addrs("demo")
		if len(addrs) < 2 {
			return
		}
		h, s := displayAddr(addrs[0].String()), displayAddr(addrs[1].String())
		fmt.Fprintf(stderr, `
sekisho demo is running: OWASP CRS v4 (paranoia level 1, blocking) in front of
two demo upstreams (%s, %s). Access log lines go to stdout.

  http://%[3]s/      https://%[4]s/   (self-signed certificate: curl -k; HTTP/3 too, on UDP)

Try:
  curl -i 'http://%[3]s/search?q=running+shoes'                    # passes (200)
  curl -i 'http://%[3]s/search?q=%%27%%20OR%%201%%3D1--'                # SQL injection: blocked (403)
  for i in 1 2 3 4; do curl -sk https://%[4]s/ | grep -o '"server":"app[0-9]"'; done   # round robin
  go run github.com/quic-go/quic-go/example/client -insecure https://%[4]s/            # over HTTP/3

Stop with Ctrl-C.
`, ups.Addrs[0], ups.Addrs[1], h, s)
	})
}
