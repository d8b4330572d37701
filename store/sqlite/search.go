package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/supportgate/supportgate/store/searchtext"
)

// The SEARCH index (issue 18, DESIGN.md §13 "A million messages"): the
// trigram tokens of every message (store/searchtext) in a contentless FTS4
// table, written in the message's own transaction. FTS4, not FTS5: the
// go-sqlite3 driver compiles FTS5 only under a build tag, and FTS3/FTS4 are
// in its default build, so `go build` and `go test` need no flags; the
// trigrams are made here, so FTS4's word tokenizer sees one word per
// trigram and the index answers substring questions (RFC 9051 6.4.4).
//
// A message with too many tokens is listed in message_search_unindexed and
// is always a candidate. Messages stored before this migration (ids below
// message_search_state.below) are indexed when the store opens (Open).
const searchSchema = `CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts4(content="", doc, tokenize=simple);
	CREATE TABLE IF NOT EXISTS message_search_unindexed (message_id INTEGER PRIMARY KEY);
	CREATE TABLE IF NOT EXISTS message_search_state (id INTEGER PRIMARY KEY CHECK (id = 1), below INTEGER NOT NULL);
	INSERT OR IGNORE INTO message_search_state (id, below) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM messages`

// indexSearch adds a message's tokens (searchtext.Doc) to the FTS4 table
// in tx: for the batches of the indexer (searchpending.go) and of the
// backfill; a message's own transaction queues them (queueSearch).
func indexSearch(ctx context.Context, tx *sql.Tx, message int64, tokens []string, ok bool) error {
	if !ok {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO message_search_unindexed (message_id) VALUES (?)`, message)
		return err
	}
	if len(tokens) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO message_search (docid, doc) VALUES (?, ?)`, message, strings.Join(tokens, " "))
	return err
}

// backfillBatch is how many older messages one transaction indexes.
const backfillBatch = 200

// backfillSearch indexes the messages stored before the index existed,
// newest first, a batch a transaction, until none is left.
func (s *Store) backfillSearch(ctx context.Context) error {
	for {
		done := false
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var below int64
			if err := tx.QueryRowContext(ctx, `SELECT below FROM message_search_state WHERE id = 1`).Scan(&below); err != nil {
				return err
			}
			if below <= 0 {
				done = true
				return nil
			}
			rows, err := tx.QueryContext(ctx, `SELECT id, raw FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?`, below, backfillBatch)
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
			_, err = tx.ExecContext(ctx, `UPDATE message_search_state SET below = ? WHERE id = 1`, next)
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
	counts, err := s.searchSample(ctx)
	if err != nil {
		return nil, false, err
	}
	// One read transaction: a document the indexer moves meanwhile is
	// seen once, in the table or in the queue.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false, fmt.Errorf("store: searching: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT docid FROM message_search WHERE message_search MATCH ?
		UNION ALL SELECT message_id FROM message_search_unindexed
		UNION ALL SELECT id FROM messages WHERE id < (SELECT below FROM message_search_state WHERE id = 1)`, ftsQuery(rarest(q, counts)))
	if err != nil {
		return nil, false, fmt.Errorf("store: searching: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, false, fmt.Errorf("store: searching: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: searching: %w", err)
	}
	if ids, err = pendingCandidates(ctx, tx, q, ids); err != nil {
		return nil, false, fmt.Errorf("store: searching: %w", err)
	}
	return ids, true, nil
}

// rarePerAlternative is how many of an alternative's trigrams are asked of
// FTS4: the rarest. A contentless table loads every asked token's whole
// posting list (it cannot defer a frequent one and test the content), so
// a trigram most messages hold costs a read of most of the index: asking
// for the ten trigrams of "printer 4242" took 0.03 s on 100,000 messages,
// the three rarest under 0.005 s.
const rarePerAlternative = 3

// sampleSize is how many of the newest messages sampleSearch reads.
const sampleSize = 512

// sampleSearch counts the tokens of the newest messages: how often a
// trigram occurs there estimates how long its posting list is, without
// reading it (FTS4's own count, fts4aux, reads it).
func (s *Store) sampleSearch(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT raw FROM messages ORDER BY id DESC LIMIT ?`, sampleSize)
	if err != nil {
		return nil, fmt.Errorf("store: sampling messages for SEARCH: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("store: sampling messages for SEARCH: %w", err)
		}
		tokens, _ := searchtext.Doc(raw)
		for _, t := range tokens {
			counts[t]++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sampling messages for SEARCH: %w", err)
	}
	return counts, nil
}

// searchSample returns the sample's counts, read at the first SEARCH (a
// read that failed is tried again at the next).
func (s *Store) searchSample(ctx context.Context) (map[string]int, error) {
	s.sample.mu.Lock()
	defer s.sample.mu.Unlock()
	if s.sample.counts == nil {
		counts, err := s.sampleSearch(ctx)
		if err != nil {
			return nil, err
		}
		s.sample.counts = counts
	}
	return s.sample.counts, nil
}

// rarest keeps the rarest trigrams of each alternative, by their counts in
// the sample (any of a string's trigrams narrow soundly).
func rarest(q searchtext.Query, counts map[string]int) searchtext.Query {
	out := make(searchtext.Query, len(q))
	for i, alts := range q {
		out[i] = make([][]string, len(alts))
		for j, ts := range alts {
			ts = slices.Clone(ts)
			ns := make([]int, len(ts))
			for k, t := range ts {
				ns[k] = counts[t]
			}
			sort.Stable(byCount{ts, ns})
			out[i][j] = ts[:min(rarePerAlternative, len(ts))]
		}
	}
	return out
}

// byCount sorts tokens by their document counts.
type byCount struct {
	ts []string
	ns []int
}

func (b byCount) Len() int           { return len(b.ts) }
func (b byCount) Less(i, j int) bool { return b.ns[i] < b.ns[j] }
func (b byCount) Swap(i, j int) {
	b.ts[i], b.ts[j] = b.ts[j], b.ts[i]
	b.ns[i], b.ns[j] = b.ns[j], b.ns[i]
}

// ftsQuery renders a query in FTS4's enhanced query syntax (the driver
// builds SQLite with SQLITE_ENABLE_FTS3_PARENTHESIS).
func ftsQuery(q searchtext.Query) string {
	clauses := make([]string, len(q))
	for i, alts := range q {
		parts := make([]string, len(alts))
		for j, ts := range alts {
			parts[j] = "(" + strings.Join(ts, " AND ") + ")"
		}
		clauses[i] = "(" + strings.Join(parts, " OR ") + ")"
	}
	return strings.Join(clauses, " AND ")
}
