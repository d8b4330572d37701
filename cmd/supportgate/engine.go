package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/postgres"
	"github.com/supportgate/supportgate/store/sqlite"
	"github.com/supportgate/supportgate/threading"
)

var (
	_ store.Store = (*sqlite.Store)(nil)
	_ store.Store = (*postgres.Store)(nil)
)

// openEngine opens the store [store] names (DESIGN.md §15): SQLite in the
// data directory, or a PostgreSQL database shared by several nodes.
func openEngine(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if cfg.Store.Engine == config.StorePostgres {
		return postgres.Open(ctx, cfg.Store.DSN)
	}
	return sqlite.Open(ctx, cfg.Server.DataDir)
}

// tokenSecret names the reply-token key among PostgreSQL's shared secrets.
const tokenSecret = postgres.TokenKeySecret

// tokenKeys returns the keys of reply tokens and signed Message-IDs: the
// data directory's (created on first start). On PostgreSQL every node
// uses the same one, the database's, which the first node to start put
// there from its own data directory (DESIGN.md §15), so that a reply to
// mail one node sent threads by its token at any other.
func tokenKeys(ctx context.Context, cfg *config.Config, st store.Store) (threading.Keys, error) {
	keys, err := gateway.LoadKeys(cfg.Server.DataDir)
	if err != nil {
		return keys, err
	}
	pg, ok := st.(*postgres.Store)
	if !ok {
		return keys, nil
	}
	path := filepath.Join(cfg.Server.DataDir, gateway.SecretFile)
	local, err := os.ReadFile(path)
	if err != nil {
		return threading.Keys{}, fmt.Errorf("reading %s: %w", path, err)
	}
	shared, err := pg.SharedSecret(ctx, tokenSecret, local)
	if err != nil {
		return threading.Keys{}, err
	}
	if len(shared) < 32 {
		return threading.Keys{}, fmt.Errorf("the database's token key holds %d bytes; it needs at least 32", len(shared))
	}
	return threading.NewKeys(shared), nil
}
