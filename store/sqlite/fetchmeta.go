package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/searchtext"
)

// FETCH metadata (issue 8): what an IMAP FETCH of ENVELOPE and
// BODYSTRUCTURE needs is computed once per message, by the IMAP side
// (gateway/imapgw, the only user of go-imap), and kept here as opaque
// bytes beside the message, so that FETCH 1:* reads rows instead of parsing
// every message.

// metaSchema is migration 7. A table of its own rather than a column of
// messages: SQLite keeps a row's columns in order, and reading a column
// stored after raw would walk raw's overflow pages. Messages stored before
// it get their row lazily, at their first FETCH (the IMAP side computes it
// and calls SetMessagesMeta).
const metaSchema = `CREATE TABLE message_meta (
		message_id INTEGER PRIMARY KEY REFERENCES messages(id),
		data BLOB NOT NULL
	)`

// SetMetaFunc sets what computes the FETCH metadata of every message stored
// from now on; nil stops it. It runs in the storing goroutine, before the
// write transaction, so that it never holds up other writers.
func (s *Store) SetMetaFunc(f store.MetaFunc) {
	if f == nil {
		s.meta.Store(nil)
		return
	}
	s.meta.Store(&f)
}

// derived is what is computed from a message's bytes before its write
// transaction, so that parsing is never the writer's work: its FETCH
// metadata (nil without a MetaFunc) and its SEARCH tokens (search.go).
type derived struct {
	meta     []byte
	search   []string
	searchOK bool // false: too many tokens, the message is left unindexed
	// indexNow: the tokens go into the FTS4 table in the message's
	// transaction, not the queue (searchpending.go): an import's
	// transaction of thousands of messages writes one segment anyway, and
	// its messages would outpace the queue's batches.
	indexNow bool
}

// computeMeta is what is derived from raw.
func (s *Store) computeMeta(raw []byte) derived {
	var d derived
	if f := s.meta.Load(); f != nil {
		d.meta = (*f)(raw)
	}
	d.search, d.searchOK = searchtext.Doc(raw)
	return d
}

// insertMeta stores a message's metadata in the message's transaction.
func insertMeta(ctx context.Context, tx *sql.Tx, message int64, data []byte) error {
	if data == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO message_meta (message_id, data) VALUES (?, ?)
		ON CONFLICT (message_id) DO UPDATE SET data = excluded.data`, message, data)
	return err
}

// idChunk bounds the variables of one statement (SQLite allows 32,766).
const idChunk = 500

// byIDs runs q on db, q's "IN (%s)" filled with ids in chunks (SQLite
// allows 32,766 variables a statement), and calls scan for every row.
func byIDs(ctx context.Context, db querier, q string, ids []int64, scan func(*sql.Rows) error) error {
	for len(ids) > 0 {
		n := min(idChunk, len(ids))
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		rows, err := db.QueryContext(ctx, fmt.Sprintf(q, "?"+strings.Repeat(", ?", n-1)), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// MessagesMeta implements WorkspaceStore.
func (s *Store) MessagesMeta(ctx context.Context, ids []int64) (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(ids))
	err := byIDs(ctx, s.read, `SELECT message_id, data FROM message_meta WHERE message_id IN (%s)`, ids, func(rows *sql.Rows) error {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return err
		}
		out[id] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading FETCH metadata: %w", err)
	}
	return out, nil
}

// SetMessagesMeta implements WorkspaceStore.
func (s *Store) SetMessagesMeta(ctx context.Context, meta map[int64][]byte) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for id, data := range meta {
			// Only for a message that exists: the metadata belongs to it.
			if _, err := tx.ExecContext(ctx, `INSERT INTO message_meta (message_id, data) SELECT id, ? FROM messages WHERE id = ?
				ON CONFLICT (message_id) DO UPDATE SET data = excluded.data`, data, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: recording FETCH metadata: %w", err)
	}
	return nil
}

// MessagesRaw implements WorkspaceStore.
func (s *Store) MessagesRaw(ctx context.Context, ids []int64) (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(ids))
	err := byIDs(ctx, s.read, `SELECT id, raw FROM messages WHERE id IN (%s)`, ids, func(rows *sql.Rows) error {
		var id int64
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return err
		}
		out[id] = raw
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading messages: %w", err)
	}
	return out, nil
}
