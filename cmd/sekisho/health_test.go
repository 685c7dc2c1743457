package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealth_ExitCodeFollowsReadiness(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready {
			http.Error(w, "not ready: shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	}))
	defer srv.Close()

	var stdout, stderr bytes.Buffer
	if code := run([]string{"health", "-url", srv.URL + "/readyz"}, &stdout, &stderr); code != 0 || stdout.String() != "ready\n" {
		t.Fatalf("ready: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	ready = false
	stderr.Reset()
	if code := run([]string{"health", "-url", srv.URL + "/readyz"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "503") || !strings.Contains(stderr.String(), "shutting down") {
		t.Fatalf("not ready: exit %d, stderr %q", code, stderr.String())
	}
}

func TestHealth_FailsWhenNothingAnswers(t *testing.T) {
	// A server that accepts but never answers: the timeout must end the probe.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if code := run([]string{"health", "-url", hang.URL, "-timeout", "200ms"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("probe took %v despite -timeout 200ms", d)
	}
	hang.Close()
	if code := run([]string{"health", "-url", hang.URL}, &stdout, &stderr); code != 1 {
		t.Fatalf("closed server: exit %d, want 1", code)
	}
}
