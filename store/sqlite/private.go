package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/supportgate/supportgate/store"
)

// Private mailboxes (DESIGN.md §6): Drafts, Sent, Trash and the agent's own
// folders are ordinary mailboxes. A message filed from a conversation keeps
// a reference to it instead of a copy of its bytes; an agent's reply or note
// is filed in their Sent when it is recorded.

// newUIDValidity returns a UIDVALIDITY that no private mailbox had before:
// the time, or one more than the last one given.
func newUIDValidity(ctx context.Context, tx *sql.Tx) (uint32, error) {
	now := time.Now().Unix() & 0x7fffffff
	if _, err := tx.ExecContext(ctx, `INSERT INTO sequences (name, value) VALUES ('private-uidvalidity', ?)
		ON CONFLICT (name) DO UPDATE SET value = MAX(value + 1, excluded.value)`, now); err != nil {
		return 0, err
	}
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT value FROM sequences WHERE name = 'private-uidvalidity'`).Scan(&v)
	return uint32(v), err
}

func createMailbox(ctx context.Context, tx *sql.Tx, agent, name string) error {
	v, err := newUIDValidity(ctx, tx)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO private_mailboxes (agent, name, uidvalidity, uidnext) VALUES (?, ?, ?, 1)`, agent, name, v)
	return err
}

// ensureDefaults creates the agent's Drafts, Sent and Trash if missing.
func ensureDefaults(ctx context.Context, tx *sql.Tx, agent string) error {
	for _, name := range store.DefaultMailboxes() {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM private_mailboxes WHERE agent = ? AND name = ?`, agent, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			err = createMailbox(ctx, tx, agent, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fileSent files an agent's recorded reply or note in their Sent.
func fileSent(ctx context.Context, tx *sql.Tx, agent string, message, received int64) error {
	if err := ensureDefaults(ctx, tx, agent); err != nil {
		return err
	}
	_, err := addPrivate(ctx, tx, agent, store.MailboxSent, store.PrivateMessage{Message: message, Flags: []string{`\Seen`}, Received: fromMillis(received)})
	return err
}

// PrivateMailboxes implements WorkspaceStore.
func (s *Store) PrivateMailboxes(ctx context.Context, agent string) ([]store.PrivateMailbox, error) {
	list := func() ([]store.PrivateMailbox, error) {
		rows, err := s.read.QueryContext(ctx, `SELECT name, uidvalidity, uidnext FROM private_mailboxes WHERE agent = ? ORDER BY name`, agent)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []store.PrivateMailbox
		for rows.Next() {
			var mb store.PrivateMailbox
			if err := rows.Scan(&mb.Name, &mb.UIDValidity, &mb.UIDNext); err != nil {
				return nil, err
			}
			out = append(out, mb)
		}
		return out, rows.Err()
	}
	out, err := list()
	if err != nil {
		return nil, fmt.Errorf("store: listing mailboxes of %s: %w", agent, err)
	}
	have := 0
	for _, mb := range out {
		for _, d := range store.DefaultMailboxes() {
			if mb.Name == d {
				have++
			}
		}
	}
	if have == len(store.DefaultMailboxes()) {
		return out, nil
	}
	err = s.change(ctx, "creating default mailboxes", func(tx *sql.Tx, ch *changes) error {
		for _, name := range store.DefaultMailboxes() {
			ch.Agent(agent, name)
		}
		return ensureDefaults(ctx, tx, agent)
	})
	if err != nil {
		return nil, err
	}
	if out, err = list(); err != nil {
		return nil, fmt.Errorf("store: listing mailboxes of %s: %w", agent, err)
	}
	return out, nil
}

func mailboxID(ctx context.Context, tx *sql.Tx, agent, name string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM private_mailboxes WHERE agent = ? AND name = ?`, agent, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, store.ErrNotFound
	}
	return id, err
}

// CreateMailbox implements WorkspaceStore.
func (s *Store) CreateMailbox(ctx context.Context, agent, name string) error {
	return s.change(ctx, "creating mailbox", func(tx *sql.Tx, ch *changes) error {
		if err := ensureDefaults(ctx, tx, agent); err != nil {
			return err
		}
		if _, err := mailboxID(ctx, tx, agent, name); err == nil {
			return store.ErrExists
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		parts := strings.Split(name, "/")
		for i := 1; i <= len(parts); i++ {
			n := strings.Join(parts[:i], "/")
			if _, err := mailboxID(ctx, tx, agent, n); errors.Is(err, store.ErrNotFound) {
				if err := createMailbox(ctx, tx, agent, n); err != nil {
					return err
				}
				ch.Agent(agent, n)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteMailbox implements WorkspaceStore.
func (s *Store) DeleteMailbox(ctx context.Context, agent, name string) error {
	return s.change(ctx, "deleting mailbox", func(tx *sql.Tx, ch *changes) error {
		ch.Agent(agent, name)
		id, err := mailboxID(ctx, tx, agent, name)
		if err != nil {
			return err
		}
		var children int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM private_mailboxes WHERE agent = ? AND substr(name, 1, ?) = ?`,
			agent, len(name)+1, name+"/").Scan(&children); err != nil {
			return err
		}
		if children > 0 {
			return store.ErrHasChildren
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM private_mailboxes WHERE id = ?`, id)
		return err
	})
}

// RenameMailbox implements WorkspaceStore.
func (s *Store) RenameMailbox(ctx context.Context, agent, from, to string) error {
	return s.change(ctx, "renaming mailbox", func(tx *sql.Tx, ch *changes) error {
		// The mailboxes below from move with it (store.Change.Mailbox).
		ch.Agent(agent, from)
		ch.Agent(agent, to)
		if _, err := mailboxID(ctx, tx, agent, from); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM private_mailboxes WHERE agent = ? AND (name = ? OR substr(name, 1, ?) = ?)`,
			agent, to, len(to)+1, to+"/").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		_, err := tx.ExecContext(ctx, `UPDATE private_mailboxes SET name = ? || substr(name, ?) WHERE agent = ? AND (name = ? OR substr(name, 1, ?) = ?)`,
			to, len(from)+1, agent, from, len(from)+1, from+"/")
		if err != nil {
			return err
		}
		if err := renameSubscriptions(ctx, tx, agent, from, to); err != nil {
			return err
		}
		// RFC 9051 6.3.6: the superiors of the new name are created.
		parts := strings.Split(to, "/")
		for i := 1; i < len(parts); i++ {
			p := strings.Join(parts[:i], "/")
			if _, err := mailboxID(ctx, tx, agent, p); errors.Is(err, store.ErrNotFound) {
				if err := createMailbox(ctx, tx, agent, p); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		}
		return nil
	})
}

// PrivateEntries implements WorkspaceStore.
func (s *Store) PrivateEntries(ctx context.Context, agent, name string) (store.PrivateMailbox, []store.MailboxEntry, error) {
	mb := store.PrivateMailbox{Name: name}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return mb, nil, fmt.Errorf("store: listing %s: %w", name, err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id, uidvalidity, uidnext FROM private_mailboxes WHERE agent = ? AND name = ?`, agent, name).
		Scan(&id, &mb.UIDValidity, &mb.UIDNext)
	if errors.Is(err, sql.ErrNoRows) {
		return mb, nil, store.ErrNotFound
	}
	if err != nil {
		return mb, nil, fmt.Errorf("store: listing %s: %w", name, err)
	}
	if mb.HighestModSeq, err = readModSeq(ctx, tx); err != nil { // sqlite_modseq.go
		return mb, nil, fmt.Errorf("store: listing %s: %w", name, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT p.uid, COALESCE(p.message_id, 0), COALESCE(m.conversation_id, 0), COALESCE(m.kind, ''),
		COALESCE(m.sender_role, ''), p.size, p.received, COALESCE(m.hidden_bcc, ''), COALESCE(m.side, 0), p.flags,
		COALESCE(r.reply_to, ''), COALESCE(r.cut, 0), MAX(p.modseq, 1)
		FROM private_messages p LEFT JOIN messages m ON m.id = p.message_id
		LEFT JOIN served_reply_to r ON r.message_id = p.message_id
		WHERE p.mailbox_id = ? ORDER BY p.uid`, id)
	if err != nil {
		return mb, nil, fmt.Errorf("store: listing %s: %w", name, err)
	}
	defer rows.Close()
	var entries []store.MailboxEntry
	for rows.Next() {
		var e store.MailboxEntry
		var kind, role, bcc, flags string
		var received int64
		if err := rows.Scan(&e.UID, &e.Message, &e.Conversation, &kind, &role, &e.Size, &received, &bcc, &e.Side, &flags,
			&e.ReplyTo, &e.ReplyToCut, &e.ModSeq); err != nil {
			return mb, nil, fmt.Errorf("store: listing %s: %w", name, err)
		}
		e.Kind, e.SenderRole, e.Received, e.HiddenBCC = store.Kind(kind), store.SenderRole(role), fromMillis(received), splitList(bcc)
		for _, f := range strings.Fields(flags) {
			if strings.EqualFold(f, `\Seen`) {
				e.Seen = true
			} else {
				e.Flags = append(e.Flags, f)
			}
		}
		entries = append(entries, e)
	}
	return mb, entries, rows.Err()
}

// PrivateRaw implements WorkspaceStore.
func (s *Store) PrivateRaw(ctx context.Context, agent, name string, uid uint32) ([]byte, error) {
	var raw []byte
	err := s.read.QueryRowContext(ctx, `SELECT p.raw FROM private_messages p JOIN private_mailboxes b ON b.id = p.mailbox_id
		WHERE b.agent = ? AND b.name = ? AND p.uid = ? AND p.raw IS NOT NULL`, agent, name, uid).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading %s/%d: %w", name, uid, err)
	}
	return raw, nil
}

// AddPrivate implements WorkspaceStore.
func (s *Store) AddPrivate(ctx context.Context, agent, name string, msgs []store.PrivateMessage) (store.PrivateMailbox, []uint32, error) {
	var mb store.PrivateMailbox
	var uids []uint32
	err := s.change(ctx, "filing in "+name, func(tx *sql.Tx, ch *changes) error {
		ch.Agent(agent, name)
		if err := ensureDefaults(ctx, tx, agent); err != nil {
			return err
		}
		uids = nil
		for _, m := range msgs {
			uid, err := addPrivate(ctx, tx, agent, name, m)
			if err != nil {
				return err
			}
			uids = append(uids, uid)
		}
		mb.Name = name
		return tx.QueryRowContext(ctx, `SELECT uidvalidity, uidnext FROM private_mailboxes WHERE agent = ? AND name = ?`, agent, name).
			Scan(&mb.UIDValidity, &mb.UIDNext)
	})
	return mb, uids, err
}

func addPrivate(ctx context.Context, tx *sql.Tx, agent, name string, m store.PrivateMessage) (uint32, error) {
	id, err := mailboxID(ctx, tx, agent, name)
	if err != nil {
		return 0, err
	}
	var uid uint32
	if err := tx.QueryRowContext(ctx, `UPDATE private_mailboxes SET uidnext = uidnext + 1 WHERE id = ? RETURNING uidnext - 1`, id).Scan(&uid); err != nil {
		return 0, err
	}
	var msgID any
	size := int64(len(m.Raw))
	raw := m.Raw
	if m.Message != 0 {
		msgID = m.Message
		raw = nil
		if err := tx.QueryRowContext(ctx, `SELECT size FROM messages WHERE id = ?`, m.Message).Scan(&size); err != nil {
			return 0, err
		}
	} else if raw == nil {
		raw = []byte{}
	}
	received := m.Received
	if received.IsZero() {
		received = time.Now()
	}
	ms, err := nextModSeq(ctx, tx) // sqlite_modseq.go
	if err != nil {
		return 0, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO private_messages (mailbox_id, uid, message_id, raw, size, received, flags, modseq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id, uid, msgID, raw, size, millis(received), strings.Join(m.Flags, " "), ms)
	return uid, err
}

// SetPrivateFlags implements WorkspaceStore.
func (s *Store) SetPrivateFlags(ctx context.Context, agent, name string, flags map[uint32][]string) error {
	return s.change(ctx, "storing flags in "+name, func(tx *sql.Tx, ch *changes) error {
		ch.Agent(agent, name)
		id, err := mailboxID(ctx, tx, agent, name)
		if err != nil {
			return err
		}
		ms, err := nextModSeq(ctx, tx) // sqlite_modseq.go
		if err != nil {
			return err
		}
		for uid, fl := range flags {
			if _, err := tx.ExecContext(ctx, `UPDATE private_messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`,
				strings.Join(fl, " "), ms, id, uid); err != nil {
				return err
			}
		}
		return nil
	})
}

// ChangePrivateFlags implements WorkspaceStore: each message's flags are
// read and written in the one write transaction, so that two sessions
// changing different flags of a message both keep their change.
func (s *Store) ChangePrivateFlags(ctx context.Context, agent, name string, uids []uint32, flags []string, add bool) error {
	return s.change(ctx, "storing flags in "+name, func(tx *sql.Tx, ch *changes) error {
		ch.Agent(agent, name)
		id, err := mailboxID(ctx, tx, agent, name)
		if err != nil {
			return err
		}
		ms, err := nextModSeq(ctx, tx) // sqlite_modseq.go
		if err != nil {
			return err
		}
		for _, uid := range uids {
			var cur string
			err := tx.QueryRowContext(ctx, `SELECT flags FROM private_messages WHERE mailbox_id = ? AND uid = ?`, id, uid).Scan(&cur)
			if errors.Is(err, sql.ErrNoRows) {
				continue // expunged meanwhile
			}
			if err != nil {
				return err
			}
			have := strings.Fields(cur)
			next := have
			for _, f := range flags {
				i := slices.IndexFunc(next, func(g string) bool { return strings.EqualFold(g, f) })
				switch {
				case add && i < 0:
					next = append(next, f)
				case !add && i >= 0:
					next = slices.Delete(slices.Clone(next), i, i+1)
				}
			}
			if slices.Equal(next, have) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE private_messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`,
				strings.Join(next, " "), ms, id, uid); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemovePrivate implements WorkspaceStore.
func (s *Store) RemovePrivate(ctx context.Context, agent, name string, uids []uint32) error {
	return s.change(ctx, "expunging in "+name, func(tx *sql.Tx, ch *changes) error {
		ch.Agent(agent, name)
		id, err := mailboxID(ctx, tx, agent, name)
		if err != nil {
			return err
		}
		// HIGHESTMODSEQ grows at an expunge too (sqlite_modseq.go).
		if _, err := nextModSeq(ctx, tx); err != nil {
			return err
		}
		for _, uid := range uids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM private_messages WHERE mailbox_id = ? AND uid = ?`, id, uid); err != nil {
				return err
			}
		}
		return nil
	})
}
