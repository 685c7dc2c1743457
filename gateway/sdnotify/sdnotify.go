// Package sdnotify tells systemd how the service is doing (sd_notify(3)),
// so a unit with Type=notify is "active" only once the listeners are up and
// "reloading" while a configuration is swapped in. Without $NOTIFY_SOCKET
// (not started by systemd, or a unit of another type) every call does
// nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Ready says the service is up: systemd starts the units ordered after it.
func Ready() error { return Notify("READY=1") }

// Reloading says a reload began; send Ready when it is done. systemd
// needs MONOTONIC_USEC (the CLOCK_MONOTONIC time of the request) to tell
// this reload from an earlier one (Type=notify-reload, systemd 253+).
func Reloading() error {
	return Notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
}

// Stopping says the service is shutting down, so systemd does not take
// the drain for a hang.
func Stopping() error { return Notify("STOPPING=1") }

// Notify sends state, newline-separated KEY=VALUE assignments, to the
// socket in $NOTIFY_SOCKET: a path, or an abstract socket written with a
// leading '@'. It returns nil at once when the variable is unset.
func Notify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither a path nor an abstract socket", addr)
	}
	// Go's net package maps a leading '@' to the abstract namespace's NUL.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / int64(time.Microsecond)
}
