// Package gateway is sekisho's server: it binds the frontends' listeners,
// checks each request, routes it by host and path, has the route's WAF
// policy inspect it and forwards what passed to the route's backend, then
// writes one access log line: the steps handler.ServeHTTP lists, each in
// a file named for it (request.go, checks.go, access.go, inspect.go,
// proxy.go). It composes the leaf packages (waf, balancer,
// certs) and owns their lifecycle: New builds everything, Run serves until
// its context ends and then shuts down gracefully.
package gateway
