package main

import (
	"context"
	"time"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/internal/metrics"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/postgres"
	"github.com/supportgate/supportgate/store/sqlite"
)

// engine is what the daemon uses of the store beyond store.Store: both
// engines have it.
type engine interface {
	store.Store
	metrics.Store
	SetMetaFunc(store.MetaFunc)
	ObserveCommits(func(time.Duration))
}

var (
	_ engine = (*sqlite.Store)(nil)
	_ engine = (*postgres.Store)(nil)
)

// openEngine opens the store [store] names (DESIGN.md §15): SQLite in the
// data directory, or a PostgreSQL database shared by several nodes.
func openEngine(ctx context.Context, cfg *config.Config) (engine, error) {
	if cfg.Store.Engine == config.StorePostgres {
		return postgres.Open(ctx, cfg.Store.DSN)
	}
	return sqlite.Open(ctx, cfg.Server.DataDir)
}
