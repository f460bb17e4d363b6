// Package reload keeps a running server in step with its files: the user
// table, reloaded when the file changes on disk and on request (SIGHUP),
// and the certificate, reloaded on request. It is the glue between the
// files and the relay engine, which knows nothing of either.
package reload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/messager/messager/internal/certs"
	"github.com/messager/messager/internal/filewatch"
	"github.com/messager/messager/internal/groups"
	"github.com/messager/messager/internal/server"
	"github.com/messager/messager/internal/users"
)

// Reloader reloads one server's files.
type Reloader struct {
	srv        *server.Server
	usersFile  string
	groupsFile string        // "" when groups are not listed from a file
	certs      *certs.Source // nil: the certificate is not reloaded
	log        *slog.Logger
	quiet      filewatch.Options
}

// Config says what a Reloader reloads.
type Config struct {
	// UsersFile is the path of user.csv.
	UsersFile string
	// GroupsFile is the path of groups.csv, or "" for none.
	GroupsFile string
	// Certs is the certificate source, or nil.
	Certs *certs.Source
	// Logger receives what the reloads did; nil means the server's.
	Logger *slog.Logger
	// Watch tunes the watch of the user file.
	Watch filewatch.Options
}

// New returns a Reloader for srv.
func New(srv *server.Server, cfg Config) *Reloader {
	if cfg.Logger == nil {
		cfg.Logger = srv.Logger()
	}
	return &Reloader{srv: srv, usersFile: cfg.UsersFile, groupsFile: cfg.GroupsFile, certs: cfg.Certs, log: cfg.Logger, quiet: cfg.Watch}
}

// Result is what a full reload did.
type Result struct {
	// Users is the number of users in the table now.
	Users int
	// UsersErr is why the user file was not applied, if it was not.
	UsersErr error
	// Groups is the number of listed groups now.
	Groups int
	// GroupsErr is why the groups file was not applied, if it was not.
	GroupsErr error
	// Fingerprint is the certificate's fingerprint now.
	Fingerprint string
	// CertErr is why the certificate was not reloaded, if it was not.
	CertErr error
}

// All reloads every file as it is (what SIGHUP does), logs the outcome
// and reports it. A file that fails keeps what the server had.
func (r *Reloader) All() Result {
	var res Result
	if err := r.Users(); err != nil {
		res.UsersErr = err
		r.log.Error("reload failed; keeping the old user table", "err", err)
	}
	res.Users = r.srv.Users().Len()
	if r.groupsFile != "" {
		if err := r.Groups(); err != nil {
			res.GroupsErr = err
			r.log.Error("reload failed; keeping the old groups", "err", err)
		}
		res.Groups = r.srv.GroupList().Len()
	}
	if r.certs != nil {
		fp, err := r.certs.Reload()
		if err != nil {
			res.CertErr = err
			r.log.Error("certificate reload failed; keeping the old one", "err", err)
		} else {
			r.log.Info("certificate reloaded", "fingerprint", fp)
		}
		res.Fingerprint = r.certs.Fingerprint()
	}
	return res
}

// Users loads the user file and swaps the table in. A bad file keeps the
// old table; the error names the line.
func (r *Reloader) Users() error {
	t, err := users.Load(r.usersFile)
	if err != nil {
		return fmt.Errorf("reload users: %w", err)
	}
	r.apply(t)
	return nil
}

// Groups loads the groups file and swaps the list in. A bad file keeps
// the old list; the error names the line.
func (r *Reloader) Groups() error {
	t, err := groups.Load(r.groupsFile)
	if err != nil {
		return fmt.Errorf("reload groups: %w", err)
	}
	r.srv.SetGroups(t)
	r.log.Info("groups reloaded", "listed_groups", t.Len())
	return nil
}

func (r *Reloader) apply(t *users.Table) {
	r.srv.SetUsers(t)
	r.log.Info("users reloaded", "users", t.Len())
	if plain := t.PlaintextUsers(); len(plain) > 0 {
		r.log.Warn("plain passwords in user file; set them again with 'messager user passwd'", "users", plain)
	}
}

// Errors of a watched reload, which is more careful than one asked for:
// a file seen on its own may be an edit caught halfway.
var (
	// ErrEmptied: the file has no users where there were some.
	ErrEmptied = errors.New("the user file is now empty; keeping the old table until SIGHUP")
	// ErrPartial: the file does not end with a line end, as a file being
	// written often does not.
	ErrPartial = errors.New("the user file does not end with a line end (still being written?); keeping the old table until it does, or SIGHUP")
)

// watched reloads the user file after the watcher saw it change.
func (r *Reloader) watched() error {
	data, err := readFile(r.usersFile)
	if err != nil {
		return fmt.Errorf("reload users: %w", err)
	}
	if len(bytes.TrimSpace(data)) > 0 && data[len(data)-1] != '\n' {
		return ErrPartial
	}
	t, err := users.Parse(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("reload users: %s: %w", r.usersFile, err)
	}
	if t.Len() == 0 && r.srv.Users().Len() > 0 {
		return ErrEmptied
	}
	r.apply(t)
	return nil
}

// Watch reloads the user file and the groups file whenever one has
// changed on disk and then stayed unchanged for a quiet period, until ctx
// ends.
func (r *Reloader) Watch(ctx context.Context) error {
	if r.groupsFile != "" {
		opts := r.quiet
		opts.OnError = func(err error) { r.log.Warn("watching groups file", "err", err) }
		err := filewatch.Watch(ctx, r.groupsFile, opts, func() {
			if err := r.Groups(); err != nil {
				r.log.Error("groups file changed but is not valid; keeping the old groups", "err", err)
			}
		})
		if err != nil {
			return err
		}
	}
	opts := r.quiet
	opts.OnError = func(err error) { r.log.Warn("watching users file", "err", err) }
	return filewatch.Watch(ctx, r.usersFile, opts, func() {
		switch err := r.watched(); {
		case errors.Is(err, ErrEmptied), errors.Is(err, ErrPartial):
			r.log.Warn("users file changed", "err", err)
		case err != nil:
			r.log.Error("users file changed but is not valid; keeping the old table", "err", err)
		}
	})
}

// readFile reads the user file through the user store's size limit.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, users.MaxFileSize+1))
}
