package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// scopeKey is the canonical form of a set of inboxes.
func scopeKey(inboxes []string) string {
	l := append([]string(nil), inboxes...)
	sort.Strings(l)
	return strings.Join(l, ",")
}

// UIDValidity implements Store.
func (s *SQLite) UIDValidity(ctx context.Context, view MailboxView) (uint32, error) {
	scope := scopeKey(view.Inboxes)
	var v int64
	var have string
	err := s.read.QueryRowContext(ctx, `SELECT uidvalidity, scope FROM mailbox_state WHERE agent = ? AND folder = ?`,
		view.Agent, view.Folder).Scan(&v, &have)
	if err == nil && have == scope {
		return uint32(v), nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: reading UIDVALIDITY: %w", err)
	}
	// New, or the visible inboxes changed: a new UIDVALIDITY, never smaller
	// than the old one, so clients drop their caches (RFC 9051 2.3.1.1).
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var old int64
		err := tx.QueryRowContext(ctx, `SELECT uidvalidity, scope FROM mailbox_state WHERE agent = ? AND folder = ?`,
			view.Agent, view.Folder).Scan(&old, &have)
		switch {
		case err == nil && have == scope:
			v = old
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		v = max(time.Now().Unix()&0x7fffffff, old+1)
		_, err = tx.ExecContext(ctx, `INSERT INTO mailbox_state (agent, folder, uidvalidity, scope) VALUES (?, ?, ?, ?)
			ON CONFLICT (agent, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, scope = excluded.scope`,
			view.Agent, view.Folder, v, scope)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: setting UIDVALIDITY: %w", err)
	}
	return uint32(v), nil
}

// Entries implements Store.
func (s *SQLite) Entries(ctx context.Context, view MailboxView) ([]MailboxEntry, uint32, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing %s: %w", view.Folder, err)
	}
	defer tx.Rollback()
	var next int64
	err = tx.QueryRowContext(ctx, `SELECT value FROM sequences WHERE name = ?`, "uid:"+string(view.Folder)).Scan(&next)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("store: listing %s: %w", view.Folder, err)
	}
	if len(view.Inboxes) == 0 {
		return nil, uint32(next + 1), nil
	}
	args := []any{view.Agent, view.Folder}
	for _, in := range view.Inboxes {
		args = append(args, in)
	}
	q := `SELECT e.uid, m.id, m.conversation_id, m.kind, m.sender_role, m.size, m.received, m.hidden_bcc, s.agent IS NOT NULL
		FROM folder_entries e
		JOIN messages m ON m.id = e.message_id
		LEFT JOIN seen s ON s.message_id = m.id AND s.agent = ?
		WHERE e.folder = ? AND e.inbox IN (?` + strings.Repeat(", ?", len(view.Inboxes)-1) + `)
		ORDER BY e.uid`
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing %s: %w", view.Folder, err)
	}
	defer rows.Close()
	var entries []MailboxEntry
	for rows.Next() {
		var e MailboxEntry
		var kind, role, bcc string
		var received int64
		if err := rows.Scan(&e.UID, &e.Message, &e.Conversation, &kind, &role, &e.Size, &received, &bcc, &e.Seen); err != nil {
			return nil, 0, fmt.Errorf("store: listing %s: %w", view.Folder, err)
		}
		e.Kind, e.SenderRole, e.Received, e.HiddenBCC = Kind(kind), SenderRole(role), fromMillis(received), splitList(bcc)
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: listing %s: %w", view.Folder, err)
	}
	return entries, uint32(next + 1), nil
}

// SetSeen implements Store.
func (s *SQLite) SetSeen(ctx context.Context, agent string, messages []int64, seen bool) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, m := range messages {
			var err error
			if seen {
				_, err = tx.ExecContext(ctx, `INSERT INTO seen (agent, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, agent, m)
			} else {
				_, err = tx.ExecContext(ctx, `DELETE FROM seen WHERE agent = ? AND message_id = ?`, agent, m)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: setting \\Seen: %w", err)
	}
	s.hub.Publish()
	return nil
}

// PendingDeliveries implements Store.
func (s *SQLite) PendingDeliveries(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT o.id, o.message_id, o.mail_from, r.recipient, m.raw
		FROM outbound_messages o
		JOIN outbound_recipients r ON r.outbound_id = o.id
		JOIN messages m ON m.id = o.message_id
		WHERE o.id IN (SELECT DISTINCT outbound_id FROM outbound_recipients WHERE state = 'queued' ORDER BY outbound_id LIMIT ?)
		AND r.state = 'queued'
		ORDER BY o.id, r.recipient`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading the queue: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var rcpt string
		if err := rows.Scan(&d.ID, &d.Message, &d.MailFrom, &rcpt, &d.Raw); err != nil {
			return nil, fmt.Errorf("store: reading the queue: %w", err)
		}
		if n := len(out); n > 0 && out[n-1].ID == d.ID {
			out[n-1].Recipients = append(out[n-1].Recipients, rcpt)
			continue
		}
		d.Recipients = []string{rcpt}
		out = append(out, d)
	}
	return out, rows.Err()
}

// MarkDelivered implements Store.
func (s *SQLite) MarkDelivered(ctx context.Context, queueID int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE outbound_recipients SET state = 'delivered', attempts = attempts + 1
			WHERE outbound_id = ? AND state = 'queued'`, queueID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: marking queue entry %d delivered: %w", queueID, err)
	}
	return nil
}
