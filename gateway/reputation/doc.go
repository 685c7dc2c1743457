// Package reputation holds the IP reputation data the gateway's access step
// consults before a request reaches the WAF: address lists (block lists,
// allow lists, known scanners, Tor exits) and the country and autonomous
// system of an address.
//
// A list is a [PrefixSet], an immutable set of IPv4 and IPv6 prefixes whose
// lookups cost one binary search, so that a list of a million entries can be
// asked about on every request. Lists come from a file ([FileList], reloaded
// when the file changes) or from a URL ([URLList], refetched on an interval
// with conditional requests); both parse the same format ([ParseList]: one
// address or CIDR prefix per line, # or ; comments). Countries and ASNs come
// from MaxMind-format databases ([GeoDB]), asked about the same address.
//
// The gateway is expected to load the lists that its configuration names
// once, share each among the frontends and routes that refer to it, and ask
// it about the client address that it has already decided on (the socket
// peer, or the address a trusted proxy reported; see package clientip), never
// about an address taken from a header on its own. On the request path it
// calls Set (an atomic load, no lock) and then Contains or Lookup on the set
// it got, so one request sees one version of a list even while it is being
// replaced. A new edition of the geo databases is taken the same way: open a
// new GeoDB and swap a pointer to it.
//
// A list that cannot be read when the gateway starts is a configuration
// error (Load returns it). Once running, a list whose source goes missing,
// unreadable or corrupt keeps its last good contents, and the failure is
// reported through the list's OnError callback for the gateway to log and
// alert on: a feed outage must neither open the gate (an empty block list)
// nor close it (an empty allow list).
package reputation
