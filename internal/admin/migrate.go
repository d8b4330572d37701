package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/store/migrate"
	"github.com/supportgate/supportgate/store/postgres"
)

// MigrateStore copies the SQLite store of cfg's data directory, and its
// reply-token key, into the empty PostgreSQL database dsn names ("": the
// configuration's [store] dsn), keeping every number agents' clients and
// customers hold (issue 16, DESIGN.md §15). The daemon must be stopped.
func MigrateStore(ctx context.Context, cfg *config.Config, dsn string) (migrate.Report, error) {
	if dsn == "" {
		dsn = cfg.Store.DSN
	}
	if dsn == "" {
		return migrate.Report{}, errors.New(`no PostgreSQL database to copy into: give -dsn, or set [store] dsn (with engine = "postgres")`)
	}
	if err := RequireStore(cfg); err != nil {
		return migrate.Report{}, err
	}
	// The key that signed every reply token sent: a customer's reply to
	// mail sent before the migration must still thread by its token.
	path := filepath.Join(cfg.Server.DataDir, gateway.SecretFile)
	key, err := os.ReadFile(path)
	if err != nil {
		return migrate.Report{}, fmt.Errorf("reading the token key: %w", err)
	}
	return migrate.SQLiteToPostgres(ctx, cfg.Server.DataDir, dsn, map[string][]byte{postgres.TokenKeySecret: key})
}
