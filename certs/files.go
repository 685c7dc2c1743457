package certs

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// fileStore picks a frontend's certificate by SNI and reloads certificate
// files that changed, so a renewal by certbot or a deploy needs no restart.
type fileStore struct {
	files    []*fileCert
	fixed    []*tls.Certificate // self-signed: never reloaded
	onReload func(file string, err error)

	lastCheck atomic.Int64 // unix nanoseconds
	checking  sync.Mutex
}

// checkEvery bounds how often handshakes look at the files.
const checkEvery = time.Second

// fileCert is one certificate file pair and what was last loaded from it.
type fileCert struct {
	CertFile
	cert  atomic.Pointer[tls.Certificate]
	stamp [2]stamp // of the certificate and the key file when loaded
}

type stamp struct {
	mod  time.Time
	size int64
}

func stampOf(name string) (stamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// load reads the pair; on error what was loaded before stays.
func (f *fileCert) load() error {
	var st [2]stamp
	var err error
	for i, name := range []string{f.CertFile.CertFile, f.KeyFile} {
		if st[i], err = stampOf(name); err != nil {
			return err
		}
	}
	cert, err := tls.LoadX509KeyPair(f.CertFile.CertFile, f.KeyFile)
	if err != nil {
		return fmt.Errorf("loading %s: %w", f.CertFile.CertFile, err)
	}
	f.cert.Store(&cert)
	f.stamp = st
	return nil
}

// changed tells whether either file differs from what was loaded.
func (f *fileCert) changed() bool {
	for i, name := range []string{f.CertFile.CertFile, f.KeyFile} {
		if st, err := stampOf(name); err != nil || st != f.stamp[i] {
			return true
		}
	}
	return false
}

// reloadChanged reloads the files that changed, at most once per
// checkEvery, by one handshake while the others go on with what is loaded.
func (s *fileStore) reloadChanged() {
	now := time.Now().UnixNano()
	if last := s.lastCheck.Load(); now-last < int64(checkEvery) || !s.lastCheck.CompareAndSwap(last, now) {
		return
	}
	if !s.checking.TryLock() {
		return
	}
	defer s.checking.Unlock()
	for _, f := range s.files {
		if !f.changed() {
			continue
		}
		err := f.load()
		if err != nil {
			// The stamps stay old: the next check tries again (a writer
			// may have been half-way through).
			err = fmt.Errorf("%w (the certificate loaded before is still served)", err)
		}
		if s.onReload != nil {
			s.onReload(f.CertFile.CertFile, err)
		}
	}
}

// get implements tls.Config.GetCertificate: the first certificate that
// suits the client (SNI name and key type), else the first one, as Go
// itself picks from tls.Config.Certificates.
func (s *fileStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.reloadChanged()
	var first *tls.Certificate
	suits := func(c *tls.Certificate) bool {
		if first == nil {
			first = c
		}
		return hello.SupportsCertificate(c) == nil
	}
	for _, f := range s.files {
		if c := f.cert.Load(); suits(c) {
			return c, nil
		}
	}
	for _, c := range s.fixed {
		if suits(c) {
			return c, nil
		}
	}
	return first, nil
}
