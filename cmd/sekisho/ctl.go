package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho/gateway/config"
)

const ctlUsage = `usage:
  sekisho ctl [-admin URL] [-token-file FILE] backends
  sekisho ctl ... state BACKEND SERVER ready|drain|maint
  sekisho ctl ... weight BACKEND SERVER 0..256
  sekisho ctl ... tables
  sekisho ctl ... table NAME [OFFSET [LIMIT]]
  sekisho ctl ... clear TABLE KEY
  sekisho ctl ... bans
  sekisho ctl ... unban CLIENT
  sekisho ctl ... reload
  sekisho ctl ... tls

Talks to a running gateway's admin API (default http://127.0.0.1:9901; the
token from -token-file or SEKISHO_ADMIN_TOKEN) and prints its JSON answer.
`

func cmdCtl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "http://127.0.0.1:9901", "the admin listener's URL")
	tokenFile := fs.String("token-file", "", "file holding the admin token (else $"+config.AdminTokenEnv+")")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token := os.Getenv(config.AdminTokenEnv)
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		token = strings.TrimSpace(string(b))
	}
	a := fs.Args()
	var method, path string
	var body []byte
	switch {
	case len(a) == 1 && a[0] == "backends":
		method, path = "GET", "/api/backends"
	case len(a) == 1 && a[0] == "reload":
		method, path = "POST", "/api/reload"
	case len(a) == 1 && a[0] == "tls":
		method, path = "GET", "/api/tls"
	case len(a) == 4 && a[0] == "state":
		method, path = "PUT", "/api/backends/"+url.PathEscape(a[1])+"/servers/"+url.PathEscape(a[2])
		body, _ = json.Marshal(map[string]string{"state": a[3]})
	case len(a) == 4 && a[0] == "weight":
		w, err := strconv.Atoi(a[3])
		if err != nil {
			fmt.Fprintf(stderr, "weight: %q is not a number\n", a[3])
			return 2
		}
		method, path = "PUT", "/api/backends/"+url.PathEscape(a[1])+"/servers/"+url.PathEscape(a[2])
		body, _ = json.Marshal(map[string]int{"weight": w})
	case len(a) == 1 && a[0] == "tables":
		method, path = "GET", "/api/tables"
	case len(a) == 1 && a[0] == "bans":
		method, path = "GET", "/api/bans"
	case len(a) == 2 && a[0] == "unban":
		method, path = "DELETE", "/api/bans/"+url.PathEscape(a[1])
	case len(a) >= 2 && len(a) <= 4 && a[0] == "table":
		q := url.Values{}
		for i, name := range []string{"offset", "limit"} {
			if len(a) > 2+i {
				q.Set(name, a[2+i])
			}
		}
		method, path = "GET", "/api/tables/"+url.PathEscape(a[1])+"?"+q.Encode()
	case len(a) == 3 && a[0] == "clear":
		method, path = "DELETE", "/api/tables/"+url.PathEscape(a[1])+"/entries/"+url.PathEscape(a[2])
	default:
		fmt.Fprint(stderr, ctlUsage)
		return 2
	}
	req, err := http.NewRequest(method, strings.TrimRight(*admin, "/")+path, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "%s: %s\n", resp.Status, strings.TrimSpace(string(out)))
		return 1
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(out)))
	return 0
}
