package sticktable

import (
	"context"
	"errors"
)

// Entry is what a table holds for one key. It is a plain value, with the
// server by name rather than by pointer, so that a store shared by several
// gateway replicas can hand it over the network unchanged.
type Entry struct {
	// Server is the name of the server the key is stuck to; "" for none.
	Server string
	// ConnCur counts the key's requests in flight (Track less release).
	ConnCur int64
	// ReqRate estimates the key's requests over the last RatePeriod.
	ReqRate int64
	// GPC is a general-purpose counter that only AddGPC changes.
	GPC int64
}

// Store is one stick table. Keys are what Config.Key returns for the
// table's configuration; each method may fail, and takes a context, because
// a store may be a network service shared by several gateways (the memory
// one never fails short of ErrClosed, ErrFull or a malformed key).
//
// Every method that finds or creates an entry refreshes its expiry, so an
// entry lives until Expire has passed without use.
type Store interface {
	// Lookup returns the key's entry; false when there is none (or it
	// has expired).
	Lookup(ctx context.Context, key string) (Entry, bool, error)
	// Stick sets the key's server, creating the entry if need be; "" unsticks.
	Stick(ctx context.Context, key, server string) error
	// Swap sets the key's server to server only if it is old or none now
	// (an absent entry included), creating the entry if need be, and
	// returns the key's server afterwards: server when swapped, else the
	// one the table holds, which wins. It is how a replica learns from a
	// response without undoing what another replica stored meanwhile, or
	// what a lookup that failed could not see.
	Swap(ctx context.Context, key, old, server string) (string, error)
	// Track counts one request for the key, creating the entry if need
	// be: ConnCur goes up by one and the request counts in ReqRate. It
	// returns the entry after counting and a release func, never nil,
	// that takes ConnCur down again; calling release more than once does
	// nothing more. Release has no context and no error so that it can be
	// deferred; a networked store bounds it with its own timeout.
	Track(ctx context.Context, key string) (Entry, func(), error)
	// Hit counts one request for the key in ReqRate, creating the entry
	// if need be, and holds no connection: a rate limit's count, which
	// has nothing to release.
	Hit(ctx context.Context, key string) (Entry, error)
	// AddGPC adds n (which may be negative) to the key's general-purpose
	// counter, creating the entry if need be, and returns the new value.
	AddGPC(ctx context.Context, key string, n int64) (int64, error)
	// Delete removes the key's entry; releases still due for it do nothing.
	Delete(ctx context.Context, key string) error
	// Len counts the live entries. It takes a context and may fail, unlike
	// a local container's Len, because a shared store has to ask.
	Len(ctx context.Context) (int, error)
	// Entries lists live entries for an operator (the admin API), skipping
	// offset and returning at most limit, most recently used first (within
	// each shard, for the memory store). It refreshes no expiry.
	Entries(ctx context.Context, offset, limit int) ([]KeyEntry, error)
	// Close releases the store; every later call returns ErrClosed.
	Close() error
}

// KeyEntry is an entry with its key, as Entries lists them.
type KeyEntry struct {
	Key string
	Entry
}

var (
	// ErrClosed is returned by a store's methods after Close.
	ErrClosed = errors.New("sticktable: store is closed")
	// ErrFull is returned when a new entry is needed but every entry that
	// could make room has a request in flight, so none may be evicted.
	ErrFull = errors.New("sticktable: full of entries with requests in flight")
)
