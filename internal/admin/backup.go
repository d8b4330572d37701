package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/store/sqlite"
)

// Backup writes a consistent copy of the store and the token key of cfg's
// data directory into dir (created with mode 0700 if needed), beside a
// running daemon (DESIGN.md §11): dir/supportgate.db, a snapshot of the
// database, and dir/token.key, the key that signs reply tokens and
// Message-IDs, without which replies to earlier mail no longer thread by
// token. Both files are mode 0600; existing ones are never overwritten.
// It returns the paths written.
func Backup(ctx context.Context, cfg *config.Config, dir string) ([]string, error) {
	if cfg.Store.Engine == config.StorePostgres {
		// DESIGN.md §15: the database is the operator's, backed up with
		// PostgreSQL's own tools; it holds the token key too.
		return nil, errors.New(`the store is in PostgreSQL ([store] engine = "postgres"), the token key with it: back it up with pg_dump or the database's own backups`)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %s", dir, reason(err))
	}
	db := filepath.Join(dir, sqlite.DatabaseFile)
	key := filepath.Join(dir, gateway.SecretFile)
	for _, p := range []string{db, key} {
		if _, err := os.Lstat(p); err == nil {
			return nil, fmt.Errorf("%s exists; back up into a new or empty directory", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	secret, err := os.ReadFile(filepath.Join(cfg.Server.DataDir, gateway.SecretFile))
	if err != nil {
		return nil, fmt.Errorf("reading the token key: %w", err)
	}
	if err := sqlite.Backup(ctx, cfg.Server.DataDir, db); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(key, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", key, err)
	}
	_, err = f.Write(secret)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", key, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return []string{db, key}, nil
}
