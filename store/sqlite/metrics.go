package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/supportgate/supportgate/store"
)

// What the metrics endpoint reads (DESIGN.md §16, internal/metrics). The
// store imports no metrics library: it counts and reports through plain
// functions.

// ConversationCounts returns the number of conversations in each status.
// It reads the conversations_continuity index, which holds the status, not
// the rows.
func (s *Store) ConversationCounts(ctx context.Context) (map[store.Status]int64, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT status, COUNT(*) FROM conversations WHERE merged_into = 0 GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("store: counting the conversations: %w", err)
	}
	defer rows.Close()
	out := map[store.Status]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: counting the conversations: %w", err)
		}
		out[store.Status(st)] = n
	}
	return out, rows.Err()
}

// ObserveCommits makes f receive the duration of every group commit that
// stored something: from the batch's BEGIN to the end of its COMMIT, the
// fsync included (sqlite_groupcommit.go). f runs on the writer goroutine,
// between batches, so it must be quick; nil stops the reports. It may be
// called at any time.
func (s *Store) ObserveCommits(f func(time.Duration)) {
	if f == nil {
		s.w.observe.Store(nil)
		return
	}
	s.w.observe.Store(&f)
}
