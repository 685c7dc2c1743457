// Package challenge asks a client without clearance to show that it is a
// real browser before its request goes on, and gives one that does a
// clearance cookie: what Anubis, BunkerWeb's antibot and Cloudflare's
// interstitial do against scrapers and floods.
//
// Three checks, from heavier to lighter:
//
//   - pow: a page whose script (served by sekisho, no third party, works
//     offline) finds a number n such that SHA-256(token ":" n) starts with
//     the configured count of zero bits, and sends it back;
//   - js: the same with a token-sized amount of work, so a client that runs
//     no script cannot pass, yet a browser does at once;
//   - cookie: a redirect that sets a cookie; a client that keeps cookies
//     comes back with it.
//
// A challenge token and a clearance cookie are both MACed (HMAC-SHA-256)
// with a key every replica shares (Keys), over the client they were made
// for: its address prefix (/24, /64 by default) and User-Agent, optionally
// its TLS fingerprint. So a clearance copied to another network or another
// browser is refused, as is one past its expiry or made with a key the
// fleet no longer holds. Both are parsed as hostile input: fixed sizes,
// one MAC and at most one hash to check.
package challenge
