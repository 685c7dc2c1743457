// Package waf inspects HTTP requests with Coraza v3 and OWASP CRS v4.
//
// One Engine is built per policy from the rule files in an fs.FS (the
// gateway passes rules.FS()) and shared by every request that uses the
// policy: no rule is compiled on the request path. For each request the
// gateway opens a Tx, which runs the request phases, buffers the body it
// inspected (never more than the policy's limit) and hands that same body
// on, so the backend gets exactly the bytes the rules saw. The response
// phases follow: its headers, then the decoded first part of a text body
// that the gateway held (WantsResponseBody, InspectResponseBody).
//
// The package knows nothing of the gateway: it takes an *http.Request and
// addresses, and returns verdicts.
package waf
