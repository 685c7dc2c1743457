package certs

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"
)

// abandon forgets a held lock without releasing it, as a crash would.
func (s *RedisStorage) abandon(name string) {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h != nil {
		close(h.stop)
		<-h.done
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// The storage behaves as certmagic expects of one (its FileStorage's
// behaviour): values round-trip, missing keys are fs.ErrNotExist,
// directories are implied by the keys under them, listing is by path
// component, and deleting a directory deletes what is under it.
func TestRedisStorage_Conformance(t *testing.T) {
	r := startRedis(t)
	ctx := testCtx(t)
	s := NewRedisStorage(r.client(t), "t1:")
	other := NewRedisStorage(r.client(t), "t1:") // another replica
	apart := NewRedisStorage(r.client(t), "t2:") // another deployment

	files := map[string]string{
		"acme/ca/users/ops@shop.test/ops.json":    "account",
		"acme/ca/users/ops@shop.test/ops.key":     "account key",
		"certificates/ca/shop.test/shop.test.crt": "cert",
		"certificates/ca/shop.test/shop.test.key": "key",
		"certificates/ca/shop.testing/x.crt":      "longer name, same start",
		"top":                                     "at the root",
	}
	before := time.Now()
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		got, err := other.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load(%s) on the other replica = %q, %v; want %q", k, got, err, v)
		}
		if _, err := apart.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("another prefix sees %s: %v", k, err)
		}
	}
	if err := s.Store(ctx, "top", []byte("overwritten")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "top"); string(got) != "overwritten" {
		t.Errorf("after overwrite Load = %q", got)
	}
	if err := s.Store(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx, "empty"); err != nil || len(got) != 0 {
		t.Errorf("empty value: %q, %v", got, err)
	}

	// Missing keys.
	if _, err := s.Load(ctx, "nope/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "nope", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Load(ctx, "certificates/ca"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(directory) = %v, want fs.ErrNotExist", err)
	}

	// Exists and Stat: values and the directories they imply.
	for k, want := range map[string]bool{
		"top": true, "certificates": true, "certificates/ca/shop.test": true,
		"certificates/ca/shop": false, "certificates/ca/shop.test/shop.test.crt": true, "nope": false,
	} {
		if got := other.Exists(ctx, k); got != want {
			t.Errorf("Exists(%s) = %v, want %v", k, got, want)
		}
	}
	info, err := s.Stat(ctx, "certificates/ca/shop.test/shop.test.crt")
	if err != nil || !info.IsTerminal || info.Size != 4 || info.Key != "certificates/ca/shop.test/shop.test.crt" ||
		info.Modified.Before(before.Add(-time.Second)) || info.Modified.After(time.Now().Add(time.Second)) {
		t.Errorf("Stat(value) = %+v, %v", info, err)
	}
	if info, err := s.Stat(ctx, "certificates/ca"); err != nil || info.IsTerminal || info.Key != "certificates/ca" {
		t.Errorf("Stat(directory) = %+v, %v", info, err)
	}

	// List: direct children, or everything under, by path component.
	list := func(dir string, recursive bool) []string {
		t.Helper()
		keys, err := other.List(ctx, dir, recursive)
		if err != nil {
			t.Fatalf("List(%s, %v): %v", dir, recursive, err)
		}
		slices.Sort(keys)
		return keys
	}
	if got, want := list("certificates/ca", false), []string{"certificates/ca/shop.test", "certificates/ca/shop.testing"}; !slices.Equal(got, want) {
		t.Errorf("List non-recursive = %q, want %q", got, want)
	}
	if got, want := list("certificates/ca/shop.test", false), []string{"certificates/ca/shop.test/shop.test.crt", "certificates/ca/shop.test/shop.test.key"}; !slices.Equal(got, want) {
		t.Errorf("List of values = %q, want %q", got, want)
	}
	if got, want := list("certificates", true), []string{
		"certificates/ca", "certificates/ca/shop.test", "certificates/ca/shop.test/shop.test.crt",
		"certificates/ca/shop.test/shop.test.key", "certificates/ca/shop.testing", "certificates/ca/shop.testing/x.crt",
	}; !slices.Equal(got, want) {
		t.Errorf("List recursive = %q, want %q", got, want)
	}
	if got, want := list("", false), []string{"acme", "certificates", "empty", "top"}; !slices.Equal(got, want) {
		t.Errorf("List of the root = %q, want %q", got, want)
	}
	if got := list("top", false); len(got) != 0 {
		t.Errorf("List of a value = %q, want none", got)
	}

	// Delete: a value; a directory with everything under it, and nothing
	// that only shares its start; a missing key is no error.
	if err := s.Delete(ctx, "top"); err != nil || s.Exists(ctx, "top") {
		t.Errorf("Delete(value): %v, still exists: %v", err, s.Exists(ctx, "top"))
	}
	if err := other.Delete(ctx, "certificates/ca/shop.test"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"certificates/ca/shop.test", "certificates/ca/shop.test/shop.test.crt", "certificates/ca/shop.test/shop.test.key"} {
		if s.Exists(ctx, k) {
			t.Errorf("%s exists after its directory was deleted", k)
		}
	}
	if got, err := s.Load(ctx, "certificates/ca/shop.testing/x.crt"); err != nil || string(got) != "longer name, same start" {
		t.Errorf("a sibling sharing the name's start was deleted: %q, %v", got, err)
	}
	if err := s.Delete(ctx, "never/stored"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	if got, want := list("", true), []string{
		"acme", "acme/ca", "acme/ca/users", "acme/ca/users/ops@shop.test", "acme/ca/users/ops@shop.test/ops.json",
		"acme/ca/users/ops@shop.test/ops.key", "certificates", "certificates/ca", "certificates/ca/shop.testing",
		"certificates/ca/shop.testing/x.crt", "empty",
	}; !slices.Equal(got, want) {
		t.Errorf("after deletes, everything = %q, want %q", got, want)
	}
	if err := s.Delete(ctx, ""); err == nil {
		t.Error("Delete of the whole storage was not refused")
	}
}

// A second replica's Lock waits while the first holds the lock, and gets
// it once the first unlocks.
func TestRedisStorage_LockWaitsForOwner(t *testing.T) {
	r := startRedis(t)
	ctx := testCtx(t)
	a, b := NewRedisStorage(r.client(t), "t:"), NewRedisStorage(r.client(t), "t:")
	if err := a.Lock(ctx, "issue_cert_shop.test"); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_shop.test") }()
	select {
	case err := <-got:
		t.Fatalf("the second replica got a held lock: %v", err)
	case <-time.After(time.Second):
	}
	// The same replica's second Lock waits as well.
	if ok, err := a.TryLock(ctx, "issue_cert_shop.test"); ok || err != nil {
		t.Fatalf("TryLock of a held lock = %v, %v", ok, err)
	}
	unlocked := time.Now()
	if err := a.Unlock(ctx, "issue_cert_shop.test"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the waiter got the lock %v after the unlock", time.Since(unlocked).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("the waiter did not get the lock within 3s of the unlock")
	}
	if err := b.Unlock(ctx, "issue_cert_shop.test"); err != nil {
		t.Fatal(err)
	}
	// A Lock that waits past its context gives up.
	if err := a.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := b.Lock(short, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock past its deadline = %v", err)
	}
}

// A lock whose owner died (stopped refreshing it) is free once it
// expires; one whose owner lives stays held well past its expiry, kept by
// the refresher.
func TestRedisStorage_LockExpiryAndRefresh(t *testing.T) {
	r := startRedis(t)
	ctx := testCtx(t)
	const ttl = 600 * time.Millisecond
	a, b := NewRedisStorage(r.client(t), "t:"), NewRedisStorage(r.client(t), "t:")
	a.lockTTL, b.lockTTL = ttl, ttl
	a.pollEvery, b.pollEvery = 50*time.Millisecond, 50*time.Millisecond

	if err := a.Lock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(4 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ok, err := b.TryLock(ctx, "long"); ok || err != nil {
			t.Fatalf("a lock held for %v (ttl %v) was taken: %v, %v", 4*ttl, ttl, ok, err)
		}
	}
	if err := a.RenewLockLease(ctx, "long", time.Hour); err != nil {
		t.Errorf("RenewLockLease of a held lock: %v", err)
	}
	if d := b.rdb.PTTL(ctx, b.lockKey("long")).Val(); d <= 0 || d > ttl {
		t.Errorf("lease after RenewLockLease = %v, want within the lock ttl %v", d, ttl)
	}
	if err := a.Unlock(ctx, "long"); err != nil {
		t.Fatal(err)
	}

	if err := a.Lock(ctx, "dies"); err != nil {
		t.Fatal(err)
	}
	a.abandon("dies")
	start := time.Now()
	if err := b.Lock(ctx, "dies"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > ttl+time.Second {
		t.Errorf("a dead owner's lock was free only after %v (ttl %v)", waited, ttl)
	}
	b.Unlock(ctx, "dies")
}

// Only the owner's token releases a lock: another replica's Unlock does
// nothing, and an owner whose lock expired and went to another replica
// neither releases nor renews the new owner's.
func TestRedisStorage_OnlyOwnerReleases(t *testing.T) {
	r := startRedis(t)
	ctx := testCtx(t)
	a, b, c := NewRedisStorage(r.client(t), "t:"), NewRedisStorage(r.client(t), "t:"), NewRedisStorage(r.client(t), "t:")
	if err := a.Lock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(ctx, "l"); err == nil {
		t.Error("a replica released a lock it does not hold")
	}
	if ok, _ := c.TryLock(ctx, "l"); ok {
		t.Fatal("the lock was free after another replica's Unlock")
	}

	// a's lock expires (as if a stalled past the ttl) and b takes it.
	a.rdb.Del(ctx, a.lockKey("l"))
	if ok, err := b.TryLock(ctx, "l"); !ok || err != nil {
		t.Fatalf("b could not take the expired lock: %v, %v", ok, err)
	}
	if err := a.RenewLockLease(ctx, "l", time.Minute); err == nil {
		t.Error("the old owner renewed the new owner's lock")
	}
	if err := a.Unlock(ctx, "l"); err == nil {
		t.Error("the old owner's Unlock reported no problem")
	}
	if ok, _ := c.TryLock(ctx, "l"); ok {
		t.Fatal("the old owner's Unlock released the new owner's lock")
	}
	if err := b.Unlock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.TryLock(ctx, "l"); !ok || err != nil {
		t.Fatalf("the lock was not free after its owner's Unlock: %v, %v", ok, err)
	}
}

// With Redis down, storage calls fail with an error (not fs.ErrNotExist,
// which would make certmagic order anew), and Lock gives up with its
// context.
func TestRedisStorage_RedisDown(t *testing.T) {
	r := startRedis(t)
	s := NewRedisStorage(r.client(t), "t:")
	r.kill()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := s.Load(ctx, "k"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load with Redis down = %v", err)
	}
	if _, err := s.Stat(ctx, "k"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat with Redis down = %v", err)
	}
	if _, err := s.List(ctx, "k", false); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List with Redis down = %v", err)
	}
	if err := s.Store(ctx, "k", []byte("v")); err == nil {
		t.Error("Store with Redis down succeeded")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancelShort()
	if err := s.Lock(short, "l"); err == nil {
		t.Error("Lock with Redis down succeeded")
	}
}
