// Package balancer holds backend pools, their servers and the policies that
// pick a server for a request. It knows nothing of the gateway: the gateway
// asks a Pool for a server and reports back what happened.
package balancer
