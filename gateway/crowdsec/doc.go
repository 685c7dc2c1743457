// Package crowdsec makes the gateway a bouncer of a CrowdSec Local API
// (LAPI): it keeps a copy of the LAPI's decisions about IP addresses and
// ranges, so that the access step can ask about every request's client
// address without a round trip to the LAPI.
//
// A [Bouncer] pulls GET /v1/decisions/stream with its API key (the
// X-Api-Key header, a key made by `cscli bouncers add`): the first pull asks
// for every decision in force (startup=true), later ones every Interval for
// what changed since the LAPI last answered this bouncer, a list of new
// decisions and a list of deleted or expired ones, each decision known by its
// id. Decisions whose scope is Ip or Range are kept; others (Country, AS,
// usernames) are the business of other bouncers and are ignored.
//
// On the request path [Bouncer.Decision] takes a read lock, looks the address
// up in a map of exact addresses and in a sorted list of disjoint address
// intervals built from the ranges, and answers the strongest decision still
// in force (ban over captcha over anything else): an address may be under
// several decisions at once, each kept by id, so that deleting one leaves the
// others. A decision past its duration no longer answers even if the LAPI
// never says it was deleted.
//
// The LAPI is a peer that can fail. When it is unreachable or answers
// anything but a well-formed stream (an error status, bad JSON, a body over
// MaxBody), the decisions already pulled stay in force, nothing else is
// blocked, and the failure goes to OnError. The LAPI tracks on its side what
// it has sent to each bouncer, so an answer lost on the way may hold deletions
// that will never be sent again: after any failure but one where the request
// could not even be sent, the next pull asks for the full list again and
// replaces the copy with it.
//
// The gateway is expected to call Start once at start-up: an error from it
// other than [ErrConfig] says the LAPI could not be reached then, and the
// bouncer keeps trying in the background, so the gateway can report it and
// serve anyway (failing open on CrowdSec's decisions until the LAPI answers).
package crowdsec
