package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/supportgate/supportgate/store/searchtext"
)

// The SEARCH index (issue 18, DESIGN.md §13 "A million messages"), as
// store/sqlite's search.go: the trigram tokens of every message
// (store/searchtext) in a tsvector with a GIN index, written in the
// message's own transaction. The tokens are made here, so no text search
// configuration or extension (pg_trgm) is needed: array_to_tsvector and a
// tsquery of quoted lexemes take them as they are.
const searchSchema = `
CREATE TABLE IF NOT EXISTS message_search (
	message_id bigint PRIMARY KEY REFERENCES messages (id),
	doc tsvector NOT NULL
);
CREATE INDEX IF NOT EXISTS message_search_doc ON message_search USING gin (doc);
CREATE TABLE IF NOT EXISTS message_search_unindexed (message_id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS message_search_state (id int PRIMARY KEY CHECK (id = 1), below bigint NOT NULL);
INSERT INTO message_search_state (id, below) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM messages ON CONFLICT (id) DO NOTHING;
`

// indexSearch adds a message's tokens (searchtext.Doc, computed before
// the transaction: computeMeta) to the SEARCH index, in its transaction.
func indexSearch(ctx context.Context, tx pgx.Tx, message int64, tokens []string, ok bool) error {
	b := &pgx.Batch{}
	queueSearch(b, message, tokens, ok)
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// queueSearch is indexSearch's statement, in a message's pipeline.
func queueSearch(b *pgx.Batch, message int64, tokens []string, ok bool) {
	if !ok {
		b.Queue(`INSERT INTO message_search_unindexed (message_id) VALUES ($1) ON CONFLICT DO NOTHING`, message)
		return
	}
	if len(tokens) == 0 {
		return
	}
	b.Queue(`INSERT INTO message_search (message_id, doc) VALUES ($1, array_to_tsvector($2::text[]))
		ON CONFLICT (message_id) DO NOTHING`, message, tokens)
}

// backfillBatch is how many older messages one transaction indexes.
const backfillBatch = 200

// backfillSearch indexes the messages stored before the index existed,
// newest first, a batch a transaction; the state row serialises nodes.
func (s *Store) backfillSearch(ctx context.Context) error {
	for {
		done := false
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			var below int64
			if err := tx.QueryRow(ctx, `SELECT below FROM message_search_state WHERE id = 1 FOR UPDATE`).Scan(&below); err != nil {
				return err
			}
			if below <= 0 {
				done = true
				return nil
			}
			rows, err := tx.Query(ctx, `SELECT id, raw FROM messages WHERE id < $1 ORDER BY id DESC LIMIT $2`, below, backfillBatch)
			if err != nil {
				return err
			}
			type msg struct {
				id  int64
				raw []byte
			}
			var batch []msg
			for rows.Next() {
				var m msg
				if err := rows.Scan(&m.id, &m.raw); err != nil {
					rows.Close()
					return err
				}
				batch = append(batch, m)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			next := int64(0)
			for _, m := range batch {
				tokens, ok := searchtext.Doc(m.raw)
				if err := indexSearch(ctx, tx, m.id, tokens, ok); err != nil {
					return err
				}
				next = m.id
			}
			if len(batch) < backfillBatch {
				next = 0
			}
			_, err = tx.Exec(ctx, `UPDATE message_search_state SET below = $1 WHERE id = 1`, next)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: indexing older messages for SEARCH: %w", err)
		}
		if done {
			return nil
		}
	}
}

// SearchCandidates implements store.TextSearch.
func (s *Store) SearchCandidates(ctx context.Context, keys []searchtext.Key) ([]int64, bool, error) {
	q, ok := searchtext.Build(keys)
	if !ok {
		return nil, false, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT message_id FROM message_search WHERE doc @@ $1::tsquery
		UNION ALL SELECT message_id FROM message_search_unindexed
		UNION ALL SELECT id FROM messages WHERE id < (SELECT below FROM message_search_state WHERE id = 1)`, tsQuery(q))
	if err != nil {
		return nil, false, fmt.Errorf("store: searching: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, false, fmt.Errorf("store: searching: %w", err)
	}
	return ids, true, nil
}

// tsQuery renders a query as tsquery input; the tokens are ASCII letters
// and digits, quoted so that they are lexemes as they are.
func tsQuery(q searchtext.Query) string {
	clauses := make([]string, len(q))
	for i, alts := range q {
		parts := make([]string, len(alts))
		for j, ts := range alts {
			// GIN's fast scan skips through frequent posting lists
			// by the rare ones; a bounded few keep the query short.
			parts[j] = "('" + strings.Join(searchtext.Spread(ts, searchtext.MaxQueryTrigrams), "' & '") + "')"
		}
		clauses[i] = "(" + strings.Join(parts, " | ") + ")"
	}
	return strings.Join(clauses, " & ")
}
