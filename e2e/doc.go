// Package e2e holds black-box tests of the sekisho binary: TestMain builds
// it, each test starts it with its own config in front of real backend
// servers on loopback and drives it with real clients (HTTP/1.1, HTTP/2 over
// TLS, raw sockets). Nothing here imports the gateway's packages.
package e2e
