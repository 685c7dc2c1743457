package admin

import (
	"testing"

	"github.com/sekisho/sekisho/balancer"
)

// HAProxy's check_status from a check's type and error.
func TestCheckStatus(t *testing.T) {
	for _, c := range []struct {
		typ, err, want string
		none           bool
	}{
		{typ: "http", none: true, want: "INI"},
		{typ: "http", want: "L7OK"},
		{typ: "http", err: "status 503, want 200-399", want: "L7STS"},
		{typ: "http", err: `body lacks "ok"`, want: "L7RSP"},
		{typ: "http", err: `Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`, want: "L4CON"},
		{typ: "http", err: `Get "http://10.0.0.1/": dial tcp 10.0.0.1:80: i/o timeout`, want: "L4TOUT"},
		{typ: "http", err: `Get "http://10.0.0.1/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, want: "L7TOUT"},
		{typ: "tcp", want: "L4OK"},
		{typ: "tcp", err: "dial tcp 127.0.0.1:1: connect: connection refused", want: "L4CON"},
		{typ: "tcp_half_open", err: "no SYN-ACK: i/o timeout", want: "L4TOUT"},
		{typ: "exec", want: "PROCOK"},
		{typ: "exec", err: "exit status 1: down", want: "PROCERR"},
		{typ: "exec", err: "signal: killed", want: "PROCTOUT"},
	} {
		var r *balancer.CheckResult
		if !c.none {
			r = &balancer.CheckResult{Err: c.err}
		}
		if got := checkStatus(c.typ, r); got != c.want {
			t.Errorf("%s check, error %q: %s, want %s", c.typ, c.err, got, c.want)
		}
		if checkDescriptions[c.want] == "" {
			t.Errorf("no check_desc for %s", c.want)
		}
	}
}
