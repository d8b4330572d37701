package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/searchtext"
)

// FETCH metadata (store/sqlite's fetchmeta.go): what an IMAP FETCH of
// ENVELOPE and BODYSTRUCTURE needs, computed once per message by the IMAP
// side and kept as opaque bytes beside the message.

// SetMetaFunc sets what computes the FETCH metadata of every message stored
// from now on; nil stops it. It runs in the storing goroutine, before the
// write transaction.
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
func queueMeta(b *pgx.Batch, message int64, data []byte) {
	if data == nil {
		return
	}
	b.Queue(`INSERT INTO message_meta (message_id, data) VALUES ($1, $2)
		ON CONFLICT (message_id) DO UPDATE SET data = excluded.data`, message, data)
}

// byIDs reads (id, bytes) rows of a query taking an array of ids.
func (s *Store) byIDs(ctx context.Context, q string, ids []int64) (map[int64][]byte, error) {
	out := make(map[int64][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, q, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			return nil, err
		}
		out[id] = data
	}
	return out, rows.Err()
}

// MessagesMeta implements WorkspaceStore.
func (s *Store) MessagesMeta(ctx context.Context, ids []int64) (map[int64][]byte, error) {
	out, err := s.byIDs(ctx, `SELECT message_id, data FROM message_meta WHERE message_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: reading FETCH metadata: %w", err)
	}
	return out, nil
}

// SetMessagesMeta implements WorkspaceStore.
func (s *Store) SetMessagesMeta(ctx context.Context, meta map[int64][]byte) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for id, data := range meta {
			// Only for a message that exists: the metadata belongs to it.
			if _, err := tx.Exec(ctx, `INSERT INTO message_meta (message_id, data) SELECT id, $1 FROM messages WHERE id = $2
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
	out, err := s.byIDs(ctx, `SELECT id, raw FROM messages WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("store: reading messages: %w", err)
	}
	return out, nil
}
