// Package migrate copies a store from one engine to another: today an
// SQLite store into an empty PostgreSQL database (`supportgate
// migrate-store`, issue 16), keeping every number a client or a customer
// holds: conversation and message numbers, the Message-ID index, the
// shared folders' UIDs and every UIDVALIDITY, the private mailboxes' UIDs,
// mod-sequences, and the counters and sequences, so that new numbers
// continue above the copied ones and agents' IMAP clients do not resync
// (DESIGN.md §13, §15).
//
// The two engines' tables are the same, column for column (store/postgres's
// schema.go says so), so the copy is table by table: each of Copied, in
// that order (parents before the rows that reference them), with its
// columns converted by the PostgreSQL column's type (SQLite's 0/1 become
// booleans). SQLite's sequences table becomes PostgreSQL's counters and
// sequences. A table of either engine that is neither copied nor in
// NotCopied fails the package's test, so a new table cannot be forgotten.
//
// It reads the SQLite store in one read transaction (one snapshot) and
// writes in one PostgreSQL transaction: either all is copied or nothing,
// so a failed run can be run again.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store/postgres"
	"github.com/supportgate/supportgate/store/sqlite"
)

// Copied are the tables copied row for row, in the order they are copied:
// a table after those its rows reference.
var Copied = []string{
	"conversations",
	"sides",
	"messages",
	"participants",
	"message_ids",
	"message_meta",
	"followers",
	"conversation_keywords",
	"events",
	"folder_entries",
	"mailbox_state",
	"seen",
	"agent_keywords",
	"agent_modseqs",
	"entry_marks",
	"private_mailboxes",
	"private_messages",
	"subscriptions",
	"submissions",
	"served_reply_to",
	"outbound_messages",
	"outbound_recipients",
	"auto_acks",
	"auto_ack_conversations",
	"follower_notices",
	"round_robin",
	"rewrite_log",
}

// NotCopied are the tables of either engine that are not copied row for
// row, with why.
var NotCopied = map[string]string{
	"schema_migrations": "each engine's own schema version",
	"sequences":         "SQLite's: becomes PostgreSQL's counters and sequences (copySequences)",
	"counters":          "PostgreSQL's: made from SQLite's sequences",
	"secrets":           "PostgreSQL's: the secrets given to SQLiteToPostgres (the reply-token key)",
	"rate_events": "PostgreSQL's quotas' counts; SQLite's are in memory, so they start again at zero, " +
		"as at any restart (store.RateCounter)",
	// The SEARCH index is each engine's own, derived from the messages'
	// bytes (store/searchtext): PostgreSQL's is rebuilt by its backfill.
	"message_search":           "the SEARCH index: derived; PostgreSQL's backfill indexes every copied message at its next open",
	"message_search_state":     "the SEARCH index's backfill mark: set so that every copied message is indexed",
	"message_search_docsize":   "SQLite FTS4's own table of the SEARCH index",
	"message_search_segdir":    "SQLite FTS4's own table of the SEARCH index",
	"message_search_segments":  "SQLite FTS4's own table of the SEARCH index",
	"message_search_stat":      "SQLite FTS4's own table of the SEARCH index",
	"message_search_unindexed": "SQLite's list of messages not yet in the SEARCH index",
	"message_search_pending":   "SQLite's queue of SEARCH tokens not yet moved into its index: derived, as message_search",
}

// PostgresOnlyColumns are columns ("table.column") of copied tables that
// only PostgreSQL has, with why their default is right for copied rows
// (say, a queue claim's lease: none). Every other column must be in both
// engines (the package's test).
var PostgresOnlyColumns = map[string]string{}

// identitySequences are SQLite's sequences that are PostgreSQL sequences,
// with the table whose ids they number.
var identitySequences = map[string][2]string{
	"message":      {"message_numbers", "messages"},
	"conversation": {"conversation_numbers", "conversations"},
	"outbound":     {"outbound_numbers", "outbound_messages"},
}

// counterSequence reports whether SQLite's sequence name is one of
// PostgreSQL's counters (commit-ordered numbers: store/postgres's package
// comment).
func counterSequence(name string) bool {
	switch name {
	case "rewrites", "rewrite_log_floor", "modseq", "private-uidvalidity":
		return true
	}
	return strings.HasPrefix(name, "uid:")
}

// identityColumns are PostgreSQL's generated ids, whose sequences must
// continue above the copied rows.
var identityColumns = []string{"events", "private_mailboxes"}

// Count is how many rows of one table were copied.
type Count struct {
	Table string
	Rows  int64
}

// Report is what a migration copied.
type Report struct {
	Tables []Count
	// Sequences are the numbers the target continues from, by SQLite's
	// name.
	Sequences []Count
	// Secrets are the names of the secrets written.
	Secrets []string
}

// ErrNotEmpty is returned (wrapped) when the target already holds a store.
var ErrNotEmpty = errors.New("the PostgreSQL database already holds a store; migrate-store copies only into an empty one")

// SQLiteToPostgres copies the SQLite store in dataDir into the PostgreSQL
// database dsn names, which must hold no store (its schema is made or
// brought up to date first), and writes secrets (name: value) as the
// database's shared secrets. The daemon must not be running on dataDir:
// what it wrote after the copy began would not be copied.
func SQLiteToPostgres(ctx context.Context, dataDir, dsn string, secrets map[string][]byte) (Report, error) {
	path := filepath.Join(dataDir, sqlite.DatabaseFile)
	if _, err := os.Stat(path); err != nil {
		return Report{}, fmt.Errorf("no SQLite store to copy: %w", err)
	}
	// Opening it brings its schema up to date, as the daemon would.
	src, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		return Report{}, err
	}
	src.Close()
	dst, err := postgres.Open(ctx, dsn)
	if err != nil {
		return Report{}, err
	}
	dst.Close()

	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_query_only=true&_busy_timeout=10000")
	if err != nil {
		return Report{}, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	rtx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Report{}, fmt.Errorf("reading %s: %w", path, err)
	}
	defer rtx.Rollback()

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return Report{}, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var rep Report
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rep = Report{}
		// Nodes started on the database meanwhile would write into it.
		if _, err := tx.Exec(ctx, `LOCK TABLE conversations, messages, private_mailboxes, outbound_messages IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		if err := requireEmpty(ctx, tx); err != nil {
			return err
		}
		for _, table := range Copied {
			n, err := copyTable(ctx, rtx, tx, table)
			if err != nil {
				return fmt.Errorf("copying %s: %w", table, err)
			}
			rep.Tables = append(rep.Tables, Count{table, n})
		}
		seqs, err := copySequences(ctx, rtx, tx)
		if err != nil {
			return fmt.Errorf("copying the sequences: %w", err)
		}
		rep.Sequences = seqs
		// The SEARCH index is the engine's own, built from the messages:
		// every copied message is marked not yet indexed, so that SEARCH
		// reads it unindexed until the engine's backfill at its next open
		// indexes it (store/postgres/search.go).
		if _, err := tx.Exec(ctx, `UPDATE message_search_state SET below = (SELECT COALESCE(MAX(id), 0) + 1 FROM messages) WHERE id = 1`); err != nil {
			return fmt.Errorf("marking the copied messages for the SEARCH index: %w", err)
		}
		for _, table := range identityColumns {
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), MAX(id)) FROM `+pgx.Identifier{table}.Sanitize()+` HAVING MAX(id) IS NOT NULL`, table); err != nil {
				return fmt.Errorf("continuing the ids of %s: %w", table, err)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(secrets)) {
			value := secrets[name]
			if _, err := tx.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
				return fmt.Errorf("writing the secret %s: %w", name, err)
			}
			rep.Secrets = append(rep.Secrets, name)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	return rep, nil
}

// requireEmpty fails with ErrNotEmpty when a copied table has rows.
func requireEmpty(ctx context.Context, tx pgx.Tx) error {
	for _, table := range Copied {
		var any bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{table}.Sanitize()+`)`).Scan(&any); err != nil {
			return err
		}
		if any {
			return fmt.Errorf("%w (its table %s has rows)", ErrNotEmpty, table)
		}
	}
	return nil
}

// copyTable copies every row of table and returns how many.
func copyTable(ctx context.Context, src *sql.Tx, dst pgx.Tx, table string) (int64, error) {
	cols, err := sqliteColumns(ctx, src, table)
	if err != nil {
		return 0, err
	}
	types, err := postgresColumns(ctx, dst, table)
	if err != nil {
		return 0, err
	}
	conv := make([]string, len(cols))
	for i, c := range cols {
		t, ok := types[c]
		if !ok {
			return 0, fmt.Errorf("PostgreSQL's %s has no column %s", table, c)
		}
		conv[i] = t
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	rows, err := src.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM "`+table+`"`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	return dst.CopyFrom(ctx, pgx.Identifier{table}, cols, &rowSource{rows: rows, types: conv})
}

// sqliteColumns returns the columns of an SQLite table.
func sqliteColumns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("the SQLite store has no table %s", table)
	}
	return cols, nil
}

// postgresColumns returns the data types of a PostgreSQL table's columns.
func postgresColumns(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, table string) (map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`, table)
	if err != nil {
		return nil, err
	}
	types := map[string]string{}
	for rows.Next() {
		var c, t string
		if err := rows.Scan(&c, &t); err != nil {
			rows.Close()
			return nil, err
		}
		types[c] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("the PostgreSQL database has no table %s", table)
	}
	return types, nil
}

// rowSource streams SQLite rows into COPY, converted to the PostgreSQL
// columns' types (pgx.CopyFromSource).
type rowSource struct {
	rows  *sql.Rows
	types []string
}

func (r *rowSource) Next() bool { return r.rows.Next() }

func (r *rowSource) Values() ([]any, error) {
	raw := make([]any, len(r.types))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if err := r.rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	for i, v := range raw {
		c, err := convert(v, r.types[i])
		if err != nil {
			return nil, err
		}
		raw[i] = c
	}
	return raw, nil
}

func (r *rowSource) Err() error { return r.rows.Err() }

// convert makes an SQLite value one of the PostgreSQL type pgType.
func convert(v any, pgType string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch pgType {
	case "boolean":
		n, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("a boolean column holds %T", v)
		}
		return n != 0, nil
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case "text":
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case "bigint", "integer":
		if n, ok := v.(int64); ok {
			return n, nil
		}
	default:
		return nil, fmt.Errorf("no conversion into PostgreSQL's %s", pgType)
	}
	return nil, fmt.Errorf("a %s column holds %T", pgType, v)
}

// copySequences makes PostgreSQL's counters and sequences continue from
// SQLite's sequences, and returns them.
func copySequences(ctx context.Context, src *sql.Tx, dst pgx.Tx) ([]Count, error) {
	rows, err := src.QueryContext(ctx, `SELECT name, value FROM sequences ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Table, &c.Rows); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, c := range out {
		if id, ok := identitySequences[c.Table]; ok {
			// setval's value is the last one given: nextval continues
			// above it, and above every copied id.
			_, err := dst.Exec(ctx, `SELECT setval($1::regclass, GREATEST($2::bigint, 1, (SELECT COALESCE(MAX(id), 0) FROM `+
				pgx.Identifier{id[1]}.Sanitize()+`)))`, id[0], c.Rows)
			if err != nil {
				return nil, err
			}
			continue
		}
		if !counterSequence(c.Table) {
			return nil, fmt.Errorf("SQLite's sequence %q has no PostgreSQL counterpart in this supportgate", c.Table)
		}
		if _, err := dst.Exec(ctx, `INSERT INTO counters (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, c.Table, c.Rows); err != nil {
			return nil, err
		}
	}
	return out, nil
}
