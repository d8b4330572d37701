package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/supportgate/supportgate/store"
)

// ContinuityCandidate implements Store.
func (s *Store) ContinuityCandidate(ctx context.Context, inbox, owner, normSubject string, since time.Time) (int64, bool, error) {
	var conv int64
	err := s.read.QueryRowContext(ctx, `SELECT id FROM conversations
		WHERE inbox = ? AND owner = ? AND status = ? AND norm_subject = ? AND updated >= ?
		ORDER BY updated DESC, id DESC LIMIT 1`, inbox, owner, store.StatusOpen, normSubject, millis(since)).Scan(&conv)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: continuity lookup: %w", err)
	}
	return conv, true, nil
}

// SetStatus implements Store.
func (s *Store) SetStatus(ctx context.Context, conv int64, status store.Status) error {
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		before, err := foldersOf(ctx, tx, conv)
		if err != nil {
			return err
		}
		if err := setStatus(ctx, tx, conv, status); err != nil {
			return err
		}
		ch.conversation(conv, false, before)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: setting conversation %d %s: %w", conv, status, err)
	}
	return nil
}

// setStatus changes a conversation's status and keeps the shared folders in
// step (syncFolders): a conversation that stops being open leaves INBOX and
// enters Closed or Spam; one that opens again enters INBOX with new UIDs, as
// if its messages had just arrived (DESIGN.md §13), so clients that cached
// the old UIDs never see them reused.
func setStatus(ctx context.Context, tx *sql.Tx, conv int64, status store.Status) error {
	// A status that is none would leave the conversation in no folder.
	if !slices.Contains([]store.Status{store.StatusOpen, store.StatusClosed, store.StatusSpam}, status) {
		return fmt.Errorf("a conversation cannot be %q", status)
	}
	var old string
	err := tx.QueryRowContext(ctx, `SELECT status FROM conversations WHERE id = ?`, conv).Scan(&old)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil || store.Status(old) == status {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = ? WHERE id = ?`, status, conv); err != nil {
		return err
	}
	return syncFolders(ctx, tx, conv)
}
