package config

// Store is the [store] table: which engine keeps the store (DESIGN.md §15).
type Store struct {
	// Engine is engine: StoreSQLite (default), one SQLite database in
	// server.data_dir, or StorePostgres, a PostgreSQL database that any
	// number of nodes share.
	Engine string
	// DSN is dsn: the PostgreSQL connection string or URL
	// ("postgres://supportgate@db.example.test/supportgate"); required for
	// postgres, and only allowed with it. A password is better kept out
	// of the file, in ~/.pgpass or PGPASSFILE, which the driver reads.
	DSN string
}

// Values of Store.Engine.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

type fileStore struct {
	Engine *string `toml:"engine"`
	DSN    *string `toml:"dsn"`
}

// store validates [store] and applies its defaults; the DSN is only
// checked for what a file may hold here: internal/admin.Check connects.
func (v *validator) store(s *Store, fs *fileStore) {
	s.Engine = StoreSQLite
	if p := fs.Engine; p != nil {
		switch *p {
		case StoreSQLite, StorePostgres:
			s.Engine = *p
		default:
			v.errorf("store.engine", `store.engine is %q, but it must be "sqlite" or "postgres"`, *p)
		}
	}
	if fs.DSN != nil {
		s.DSN = *fs.DSN
		if v.text("store.dsn", s.DSN) && s.Engine != StorePostgres {
			v.errorf("store.dsn", `store.dsn is set, but store.engine is %q: the DSN is only used with "postgres"`, s.Engine)
		}
	}
	if s.Engine == StorePostgres && s.DSN == "" {
		v.errorf("store.engine", `store.engine is "postgres", but there is no store.dsn to connect to`)
	}
}
