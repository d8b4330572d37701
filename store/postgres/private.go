package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/supportgate/supportgate/store"
)

// Private mailboxes (DESIGN.md §6): Drafts, Sent, Trash and the agent's own
// folders are ordinary mailboxes. A message filed from a conversation keeps
// a reference to it instead of a copy of its bytes; an agent's reply or note
// is filed in their Sent when it is recorded.

// newUIDValidity returns a UIDVALIDITY that no private mailbox had before:
// the time, or one more than the last one given.
func newUIDValidity(ctx context.Context, tx pgx.Tx) (uint32, error) {
	var v int64
	err := tx.QueryRow(ctx, `UPDATE counters SET value = GREATEST(value + 1, $1) WHERE name = 'private-uidvalidity' RETURNING value`,
		time.Now().Unix()&0x7fffffff).Scan(&v)
	return uint32(v), err
}

// createMailbox creates a mailbox unless it exists, and reports whether it
// did.
func createMailbox(ctx context.Context, tx pgx.Tx, agent, name string) (bool, error) {
	v, err := newUIDValidity(ctx, tx)
	if err != nil {
		return false, err
	}
	n, err := execCount(ctx, tx, `INSERT INTO private_mailboxes (agent, name, uidvalidity, uidnext) VALUES ($1, $2, $3, 1)
		ON CONFLICT DO NOTHING`, agent, name, int64(v))
	return n > 0, err
}

// ensureDefaults creates the agent's Drafts, Sent and Trash if missing.
func ensureDefaults(ctx context.Context, tx pgx.Tx, agent string) error {
	have, err := strs(ctx, tx, `SELECT name FROM private_mailboxes WHERE agent = $1 AND name = ANY($2)`, agent, store.DefaultMailboxes())
	if err != nil || len(have) == len(store.DefaultMailboxes()) {
		return err
	}
	// The counters in their order (the package comment): the mod-sequence
	// before the private UIDVALIDITY, as a reply filed in Sent takes them.
	if _, err := nextModSeq(ctx, tx); err != nil {
		return err
	}
	for _, name := range store.DefaultMailboxes() {
		if !slices.Contains(have, name) {
			if _, err := createMailbox(ctx, tx, agent, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// fileSent files an agent's recorded reply or note in their Sent.
func fileSent(ctx context.Context, tx pgx.Tx, agent string, message, received int64) error {
	if err := ensureDefaults(ctx, tx, agent); err != nil {
		return err
	}
	_, err := addPrivate(ctx, tx, agent, store.MailboxSent, store.PrivateMessage{Message: message, Flags: []string{`\Seen`}, Received: fromMillis(received)})
	return err
}

func listMailboxes(ctx context.Context, q querier, agent string) ([]store.PrivateMailbox, error) {
	rows, err := q.Query(ctx, `SELECT name, uidvalidity, uidnext FROM private_mailboxes WHERE agent = $1 ORDER BY name`, agent)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.PrivateMailbox, error) {
		var mb store.PrivateMailbox
		var v, next int64
		err := row.Scan(&mb.Name, &v, &next)
		mb.UIDValidity, mb.UIDNext = uint32(v), uint32(next)
		return mb, err
	})
}

// PrivateMailboxes implements WorkspaceStore.
func (s *Store) PrivateMailboxes(ctx context.Context, agent string) ([]store.PrivateMailbox, error) {
	out, err := listMailboxes(ctx, s.pool, agent)
	if err != nil {
		return nil, fmt.Errorf("store: listing mailboxes of %s: %w", agent, err)
	}
	have := 0
	for _, mb := range out {
		if slices.Contains(store.DefaultMailboxes(), mb.Name) {
			have++
		}
	}
	if have == len(store.DefaultMailboxes()) {
		return out, nil
	}
	err = s.change(ctx, "creating default mailboxes", func(tx pgx.Tx, ch *changes) error {
		for _, name := range store.DefaultMailboxes() {
			ch.Agent(agent, name)
		}
		return ensureDefaults(ctx, tx, agent)
	})
	if err != nil {
		return nil, err
	}
	if out, err = listMailboxes(ctx, s.pool, agent); err != nil {
		return nil, fmt.Errorf("store: listing mailboxes of %s: %w", agent, err)
	}
	return out, nil
}

// mailboxID returns a mailbox's id; with lock, its row is locked until tx
// ends (its uidnext is about to change).
func mailboxID(ctx context.Context, tx pgx.Tx, agent, name string, lock bool) (int64, error) {
	q := `SELECT id FROM private_mailboxes WHERE agent = $1 AND name = $2`
	if lock {
		q += ` FOR UPDATE`
	}
	var id int64
	err := tx.QueryRow(ctx, q, agent, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrNotFound
	}
	return id, err
}

// CreateMailbox implements WorkspaceStore.
func (s *Store) CreateMailbox(ctx context.Context, agent, name string) error {
	return s.change(ctx, "creating mailbox", func(tx pgx.Tx, ch *changes) error {
		if err := ensureDefaults(ctx, tx, agent); err != nil {
			return err
		}
		parts := strings.Split(name, "/")
		for i := 1; i <= len(parts); i++ {
			n := strings.Join(parts[:i], "/")
			created, err := createMailbox(ctx, tx, agent, n)
			if err != nil {
				return err
			}
			if created {
				ch.Agent(agent, n)
			}
			if i == len(parts) && !created {
				return store.ErrExists
			}
		}
		return nil
	})
}

// DeleteMailbox implements WorkspaceStore.
func (s *Store) DeleteMailbox(ctx context.Context, agent, name string) error {
	return s.change(ctx, "deleting mailbox", func(tx pgx.Tx, ch *changes) error {
		ch.Agent(agent, name)
		id, err := mailboxID(ctx, tx, agent, name, true)
		if err != nil {
			return err
		}
		var children int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM private_mailboxes WHERE agent = $1 AND starts_with(name, $2)`,
			agent, name+"/").Scan(&children); err != nil {
			return err
		}
		if children > 0 {
			return store.ErrHasChildren
		}
		_, err = tx.Exec(ctx, `DELETE FROM private_mailboxes WHERE id = $1`, id)
		return err
	})
}

// RenameMailbox implements WorkspaceStore.
func (s *Store) RenameMailbox(ctx context.Context, agent, from, to string) error {
	return s.change(ctx, "renaming mailbox", func(tx pgx.Tx, ch *changes) error {
		// The mailboxes below from move with it (store.Change.Mailbox).
		ch.Agent(agent, from)
		ch.Agent(agent, to)
		if _, err := mailboxID(ctx, tx, agent, from, true); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM private_mailboxes WHERE agent = $1 AND (name = $2 OR starts_with(name, $3))`,
			agent, to, to+"/").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		_, err := tx.Exec(ctx, `UPDATE private_mailboxes SET name = $1 || substr(name, char_length($2) + 1)
			WHERE agent = $3 AND (name = $2 OR starts_with(name, $4))`, to, from, agent, from+"/")
		if err != nil {
			if isUniqueViolation(err) { // created meanwhile by another session
				return store.ErrExists
			}
			return err
		}
		if err := renameSubscriptions(ctx, tx, agent, from, to); err != nil {
			return err
		}
		// RFC 9051 6.3.6: the superiors of the new name are created.
		parts := strings.Split(to, "/")
		for i := 1; i < len(parts); i++ {
			if _, err := createMailbox(ctx, tx, agent, strings.Join(parts[:i], "/")); err != nil {
				return err
			}
		}
		return nil
	})
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// PrivateEntries implements WorkspaceStore.
func (s *Store) PrivateEntries(ctx context.Context, agent, name string) (store.PrivateMailbox, []store.MailboxEntry, error) {
	mb := store.PrivateMailbox{Name: name}
	var entries []store.MailboxEntry
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		var id, v, next int64
		err := tx.QueryRow(ctx, `SELECT id, uidvalidity, uidnext FROM private_mailboxes WHERE agent = $1 AND name = $2`, agent, name).
			Scan(&id, &v, &next)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		mb.UIDValidity, mb.UIDNext = uint32(v), uint32(next)
		if mb.HighestModSeq, err = readModSeq(ctx, tx); err != nil { // modseq.go
			return err
		}
		rows, err := tx.Query(ctx, `SELECT p.uid, COALESCE(p.message_id, 0), COALESCE(m.conversation_id, 0), COALESCE(m.kind, ''),
			COALESCE(m.sender_role, ''), p.size, p.received, COALESCE(m.hidden_bcc, ''), COALESCE(m.side, 0), p.flags,
			COALESCE(r.reply_to, ''), COALESCE(r.cut, 0), GREATEST(p.modseq, 1)
			FROM private_messages p LEFT JOIN messages m ON m.id = p.message_id
			LEFT JOIN served_reply_to r ON r.message_id = p.message_id
			WHERE p.mailbox_id = $1 ORDER BY p.uid`, id)
		if err != nil {
			return err
		}
		entries, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.MailboxEntry, error) {
			var e store.MailboxEntry
			var kind, role, bcc, flags string
			var uid, received, side int64
			if err := row.Scan(&uid, &e.Message, &e.Conversation, &kind, &role, &e.Size, &received, &bcc, &side, &flags,
				&e.ReplyTo, &e.ReplyToCut, &e.ModSeq); err != nil {
				return e, err
			}
			e.UID, e.Side = uint32(uid), int(side)
			e.Kind, e.SenderRole, e.Received, e.HiddenBCC = store.Kind(kind), store.SenderRole(role), fromMillis(received), splitList(bcc)
			for _, f := range strings.Fields(flags) {
				if strings.EqualFold(f, `\Seen`) {
					e.Seen = true
				} else {
					e.Flags = append(e.Flags, f)
				}
			}
			return e, nil
		})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return mb, nil, err
	}
	if err != nil {
		return mb, nil, fmt.Errorf("store: listing %s: %w", name, err)
	}
	if len(entries) == 0 {
		entries = nil
	}
	return mb, entries, nil
}

// PrivateRaw implements WorkspaceStore.
func (s *Store) PrivateRaw(ctx context.Context, agent, name string, uid uint32) ([]byte, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT p.raw FROM private_messages p JOIN private_mailboxes b ON b.id = p.mailbox_id
		WHERE b.agent = $1 AND b.name = $2 AND p.uid = $3 AND p.raw IS NOT NULL`, agent, name, int64(uid)).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
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
	err := s.change(ctx, "filing in "+name, func(tx pgx.Tx, ch *changes) error {
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
		var v, next int64
		err := tx.QueryRow(ctx, `SELECT uidvalidity, uidnext FROM private_mailboxes WHERE agent = $1 AND name = $2`, agent, name).Scan(&v, &next)
		mb.UIDValidity, mb.UIDNext = uint32(v), uint32(next)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	})
	return mb, uids, err
}

func addPrivate(ctx context.Context, tx pgx.Tx, agent, name string, m store.PrivateMessage) (uint32, error) {
	ms, err := nextModSeq(ctx, tx) // modseq.go; before the mailbox's row, as every writer takes them
	if err != nil {
		return 0, err
	}
	var id, uid int64
	err = tx.QueryRow(ctx, `UPDATE private_mailboxes SET uidnext = uidnext + 1 WHERE agent = $1 AND name = $2 RETURNING id, uidnext - 1`,
		agent, name).Scan(&id, &uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	var msgID *int64
	size := int64(len(m.Raw))
	raw := m.Raw
	if m.Message != 0 {
		msgID = &m.Message
		raw = nil
		if err := tx.QueryRow(ctx, `SELECT size FROM messages WHERE id = $1`, m.Message).Scan(&size); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return 0, store.ErrNotFound
			}
			return 0, err
		}
	} else if raw == nil {
		raw = []byte{}
	}
	received := m.Received
	if received.IsZero() {
		received = time.Now()
	}
	_, err = tx.Exec(ctx, `INSERT INTO private_messages (mailbox_id, uid, message_id, raw, size, received, flags, modseq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		id, uid, msgID, raw, size, millis(received), strings.Join(m.Flags, " "), ms)
	return uint32(uid), err
}

// SetPrivateFlags implements WorkspaceStore.
func (s *Store) SetPrivateFlags(ctx context.Context, agent, name string, flags map[uint32][]string) error {
	return s.change(ctx, "storing flags in "+name, func(tx pgx.Tx, ch *changes) error {
		ch.Agent(agent, name)
		ms, err := nextModSeq(ctx, tx) // modseq.go
		if err != nil {
			return err
		}
		id, err := mailboxID(ctx, tx, agent, name, false)
		if err != nil {
			return err
		}
		for uid, fl := range flags {
			if _, err := tx.Exec(ctx, `UPDATE private_messages SET flags = $1, modseq = $2 WHERE mailbox_id = $3 AND uid = $4`,
				strings.Join(fl, " "), ms, id, int64(uid)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ChangePrivateFlags implements WorkspaceStore: each message's flags are
// read under its row's lock and written in the one transaction, so that
// two sessions changing different flags of a message both keep their
// change.
func (s *Store) ChangePrivateFlags(ctx context.Context, agent, name string, uids []uint32, flags []string, add bool) error {
	return s.change(ctx, "storing flags in "+name, func(tx pgx.Tx, ch *changes) error {
		ch.Agent(agent, name)
		ms, err := nextModSeq(ctx, tx) // modseq.go
		if err != nil {
			return err
		}
		id, err := mailboxID(ctx, tx, agent, name, false)
		if err != nil {
			return err
		}
		for _, uid := range uids {
			var cur string
			err := tx.QueryRow(ctx, `SELECT flags FROM private_messages WHERE mailbox_id = $1 AND uid = $2 FOR UPDATE`, id, int64(uid)).Scan(&cur)
			if errors.Is(err, pgx.ErrNoRows) {
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
			if _, err := tx.Exec(ctx, `UPDATE private_messages SET flags = $1, modseq = $2 WHERE mailbox_id = $3 AND uid = $4`,
				strings.Join(next, " "), ms, id, int64(uid)); err != nil {
				return err
			}
		}
		return nil
	})
}

// RemovePrivate implements WorkspaceStore.
func (s *Store) RemovePrivate(ctx context.Context, agent, name string, uids []uint32) error {
	return s.change(ctx, "expunging in "+name, func(tx pgx.Tx, ch *changes) error {
		ch.Agent(agent, name)
		// HIGHESTMODSEQ grows at an expunge too (modseq.go).
		if _, err := nextModSeq(ctx, tx); err != nil {
			return err
		}
		id, err := mailboxID(ctx, tx, agent, name, false)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM private_messages WHERE mailbox_id = $1 AND uid = ANY($2)`, id, uidList(uids))
		return err
	})
}
