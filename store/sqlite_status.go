package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ContinuityCandidate implements Store.
func (s *SQLite) ContinuityCandidate(ctx context.Context, inbox, owner, normSubject string, since time.Time) (int64, bool, error) {
	var conv int64
	err := s.read.QueryRowContext(ctx, `SELECT id FROM conversations
		WHERE inbox = ? AND owner = ? AND status = ? AND norm_subject = ? AND updated >= ?
		ORDER BY updated DESC, id DESC LIMIT 1`, inbox, owner, StatusOpen, normSubject, millis(since)).Scan(&conv)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: continuity lookup: %w", err)
	}
	return conv, true, nil
}

// SetStatus implements Store.
func (s *SQLite) SetStatus(ctx context.Context, conv int64, status Status) error {
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return setStatus(ctx, tx, conv, status) }); err != nil {
		return fmt.Errorf("store: setting conversation %d %s: %w", conv, status, err)
	}
	s.hub.Publish()
	return nil
}

// setStatus changes a conversation's status and keeps INBOX in step: a
// conversation that stops being open leaves INBOX; one that opens again
// enters it with new UIDs, as if its messages had just arrived (DESIGN.md
// §13), so clients that cached the old UIDs never see them reused.
func setStatus(ctx context.Context, tx *sql.Tx, conv int64, status Status) error {
	var old, inbox string
	err := tx.QueryRowContext(ctx, `SELECT status, inbox FROM conversations WHERE id = ?`, conv).Scan(&old, &inbox)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil || Status(old) == status {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET status = ? WHERE id = ?`, status, conv); err != nil {
		return err
	}
	if Status(old) == StatusOpen {
		_, err := tx.ExecContext(ctx, `DELETE FROM folder_entries WHERE folder = ?
			AND message_id IN (SELECT id FROM messages WHERE conversation_id = ?)`, FolderInbox, conv)
		return err
	}
	if status != StatusOpen {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM messages WHERE conversation_id = ? ORDER BY id`, conv)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := addEntry(ctx, tx, FolderInbox, id, inbox); err != nil {
			return err
		}
	}
	return nil
}

// addEntry gives a message the next UID of a shared folder kind.
func addEntry(ctx context.Context, tx *sql.Tx, folder Folder, message int64, inbox string) error {
	uid, err := nextval(ctx, tx, "uid:"+string(folder))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO folder_entries (folder, uid, message_id, inbox) VALUES (?, ?, ?, ?)`,
		folder, uid, message, inbox)
	return err
}
