// Package alert sends security alerts to webhooks.
//
// The gateway calls Emit for what an operator must hear about (a blocked
// request, a backend down, a reload that failed); a Dispatcher groups the
// repeats, and a goroutine per endpoint POSTs the result. Emit never waits
// on the network and costs a map lookup in the common case, so alerting
// can neither slow nor fail a request: what cannot be queued is dropped and
// counted (Options.OnDrop). The package knows nothing of the gateway.
//
// # Configuration
//
//	alerts:
//	  window: 30s          # aggregation window
//	  queue_size: 1000     # per endpoint
//	  max_keys: 10000      # distinct keys held at once
//	  endpoints:
//	    - name: soc
//	      url: https://siem.example.com/hooks/sekisho
//	      secret_file: /etc/sekisho/alert-soc.key   # else $SEKISHO_ALERT_SECRET_SOC
//	      events: ["waf.*", "rules.reload_failed"]  # empty: all
//	      min_severity: warning                     # info, warning, critical
//	      timeout: 5s          # per attempt
//	      max_retries: 4
//	      backoff: 1s          # first retry waits up to this, doubling
//	      max_backoff: 1m      # Retry-After above it drops the alert
//	    - name: ops-slack
//	      url: https://hooks.slack.com/services/T000/B000/XXXX
//	      format: slack
//	      events: ["backend.*", "cert.*", "redis.*", "config.*"]
//	    - name: pager
//	      url: https://events.example.com/v2/enqueue
//	      format: template
//	      headers: {Authorization: "Token abc"}
//	      template: '{"summary": {{json .Summary}}, "severity": {{json .Severity}}, "count": {{.Count}}}'
//
// # Event types
//
// Each has a default severity, used when the emitter leaves it zero:
//
//	waf.block             warning   request fields, matches, score
//	waf.detect            info      the same, from a policy in detect mode
//	rate_limit.triggered  warning   request fields, fields["limit"]
//	backend.down          critical  backend, server, message
//	backend.up            info      backend, server
//	rules.reload_failed   critical  policy, message (file:line: error)
//	config.reload_failed  critical  message
//	cert.renewal_failed   critical  host (the certificate's name), message
//	cert.expiring         warning   host, fields["not_after"]
//	redis.down            critical  message
//	redis.up              info
//
// # Aggregation
//
// Events are the same when they share type, severity, first matched rule,
// client IP, route, host, policy, backend and server (the issue's
// "type, rule, client IP, route", plus what tells apart events that have no
// rule or client). The first event of a key goes out at once, with Count 1,
// and opens a window. The events of that key within the window are counted,
// and when it ends they go out as one alert carrying the latest of them,
// their Count and their First and Last times; a new window opens at once,
// so a sustained attack costs one call a window. A window in which nothing
// repeated closes the key, and its next event goes out at once again. So a
// burst of 1,000 blocked requests costs two calls whose counts add up to
// 1,000. Close sends the summaries of open windows without waiting.
//
// # Delivery
//
// Each endpoint has a bounded queue and one goroutine that sends in order.
// An attempt is bounded by the endpoint's timeout. Network errors, 429 and
// 5xx are retried up to max_retries times after a random wait (full jitter:
// up to backoff, doubling each time, up to max_backoff), or after exactly
// Retry-After (seconds or an HTTP date) when the receiver sends one. Other
// statuses outside 2xx, redirects included (they are not followed), are
// failures that are not retried. Each alert ends in exactly one of
// OnDeliver (2xx, or refused) and OnDrop, whose reason is one of the Drop*
// constants (max_keys, queue_full, retries_exhausted, retry_after,
// shutdown). Errors name only the URL's scheme and host, since a webhook
// URL is often the credential.
//
// # Payloads
//
// FormatJSON (Content-Type application/json) is the Alert:
//
//	{
//	  "type": "waf.block",                 // always
//	  "severity": "warning",               // always: info, warning, critical
//	  "time": "2025-01-02T03:04:05Z",      // always: the carried event's time
//	  "request_id": "…", "client_ip": "203.0.113.7", "host": "shop.example.com",
//	  "path": "/search", "route": "shop", "policy": "strict",
//	  "matches": [{"rule_id": 942100, "message": "SQL Injection Attack Detected via libinjection",
//	               "variable": "ARGS:q", "exclusion": "SecRule REQUEST_FILENAME \"@streq /search\" …"}],
//	  "score": 15,
//	  "backend": "api", "server": "10.0.0.3:8080",
//	  "message": "rules/custom.conf:12: …",
//	  "fields": {"not_after": "…"},
//	  "count": 1000,                       // always: events this alert stands for
//	  "first": "…", "last": "…",           // always: the first and last of them
//	  "summary": "[warning] waf.block ×1000: rule 942100, from 203.0.113.7, …" // always
//	}
//
// Fields other than those marked always are left out when empty.
// FormatSlack is {"text": "..."}: a header line with severity, type, count
// and times, then a line per detail, each match with its exclusion as a
// code block; every value is escaped so that a request cannot post a link
// or a mention. FormatTemplate is a text/template executed over the *Alert
// (so .Type, .ClientIP, .Matches, .Count, .Summary...), with a json
// function that quotes a value; it is run over a sample alert when the
// config is validated, so a misspelt field is a config error. Its
// Content-Type is application/json unless headers say otherwise.
//
// # Signature
//
// With a secret, each attempt carries (here for the secret "whsec" and the
// body {"type":"redis.up"})
//
//	X-Sekisho-Signature: t=1735787045,v1=0a1295ebb3e46a3a6db34e88271af2816ef116d59e391046d218bd2c312c289d
//
// where t is the time of the attempt in Unix seconds and v1 the hex
// HMAC-SHA256, keyed with the secret, of t, a '.', and the raw body. Every
// request also carries X-Sekisho-Event (the type) and X-Sekisho-Delivery
// (random, the same across the retries of one alert, so that a receiver can
// drop repeats). A receiver recomputes the HMAC over the bytes it read,
// compares in constant time, and refuses a t too far from its clock (5
// minutes is usual) to bound replays. In Go, Verify does it; by hand:
//
//	body, _ := io.ReadAll(r.Body)
//	var ts, sig string
//	for _, p := range strings.Split(r.Header.Get("X-Sekisho-Signature"), ",") {
//		k, v, _ := strings.Cut(p, "=")
//		if k == "t" { ts = v } else if k == "v1" { sig = v }
//	}
//	m := hmac.New(sha256.New, secret)
//	m.Write([]byte(ts + "."))
//	m.Write(body)
//	got, _ := hex.DecodeString(sig)
//	sec, _ := strconv.ParseInt(ts, 10, 64)
//	ok := hmac.Equal(got, m.Sum(nil)) && time.Since(time.Unix(sec, 0)).Abs() < 5*time.Minute
//
// and in a shell, with the body saved in body.json and t in $T:
//
//	{ printf '%s.' "$T"; cat body.json; } | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}'
//
// which prints the expected v1.
package alert
