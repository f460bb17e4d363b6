package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/messager/messager/internal/certs"
	"github.com/messager/messager/internal/users"
)

// CertSource serves the server's certificate and can reload it from disk,
// so a renewed certificate needs no restart.
type CertSource struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
	fingerprint       atomic.Pointer[string]
}

// NewCertSource loads the certificate and key, generating a self-signed
// pair when both files are missing. created reports that it did.
func NewCertSource(certFile, keyFile string) (src *CertSource, created bool, err error) {
	cert, fp, created, err := certs.LoadOrCreate(certFile, keyFile)
	if err != nil {
		return nil, false, err
	}
	src = &CertSource{certFile: certFile, keyFile: keyFile}
	src.cert.Store(&cert)
	src.fingerprint.Store(&fp)
	return src, created, nil
}

// Reload loads the files again; on error the old certificate stays.
func (c *CertSource) Reload() (fingerprint string, err error) {
	cert, fp, err := certs.Load(c.certFile, c.keyFile)
	if err != nil {
		return "", err
	}
	c.cert.Store(&cert)
	c.fingerprint.Store(&fp)
	return fp, nil
}

// Fingerprint returns the current certificate's fingerprint.
func (c *CertSource) Fingerprint() string { return *c.fingerprint.Load() }

// TLSConfig returns a server configuration that always serves the
// current certificate.
func (c *CertSource) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cert.Load(), nil
		},
	}
}

// ReloadUsers loads path and swaps the table in. A bad file keeps the old
// table; the error names the line.
func (s *Server) ReloadUsers(path string) error {
	return s.reloadUsers(path, false)
}

// errEmptied is returned when the watcher sees a user file with no users
// where there were some: more likely an editor caught halfway through a
// rewrite than an intent to log everybody out.
var errEmptied = errors.New("the user file is now empty; keeping the old table until SIGHUP")

func (s *Server) reloadUsers(path string, watched bool) error {
	t, err := users.Load(path)
	if err != nil {
		return fmt.Errorf("reload users: %w", err)
	}
	if watched && t.Len() == 0 && s.users.Load().Len() > 0 {
		return errEmptied
	}
	s.SetUsers(t)
	s.cfg.Logger.Info("users reloaded", "users", t.Len())
	if plain := t.PlaintextUsers(); len(plain) > 0 {
		s.cfg.Logger.Warn("plain passwords in user file; set them again with 'messager user passwd'", "users", plain)
	}
	return nil
}

// WatchUsers reloads the user file whenever it changes on disk, until ctx
// ends. It watches the folder, not the file, because editors and
// 'messager user' replace the file by renaming a new one over it.
func (s *Server) WatchUsers(ctx context.Context, path string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch users: %w", err)
	}
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watch users: %w", err)
	}
	go func() {
		defer w.Close()
		var settle <-chan time.Time
		target := filepath.Clean(path)
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == target && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					// Let a burst of writes settle before reading.
					settle = time.After(100 * time.Millisecond)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.cfg.Logger.Warn("watching users file", "err", err)
			case <-settle:
				settle = nil
				if err := s.reloadUsers(path, true); errors.Is(err, errEmptied) {
					s.cfg.Logger.Warn("users file changed", "err", err)
				} else if err != nil {
					s.cfg.Logger.Error("users file changed but is not valid; keeping the old table", "err", err)
				}
			}
		}
	}()
	return nil
}

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.cfg.Logger }
