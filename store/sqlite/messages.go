package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/supportgate/supportgate/store"
)

// ConversationByMessageID implements Store.
func (s *Store) ConversationByMessageID(ctx context.Context, ids []string) (int64, bool, error) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		var conv int64
		err := s.read.QueryRowContext(ctx, `SELECT conversation_id FROM message_ids WHERE message_id_header = ?`, id).Scan(&conv)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("store: looking up Message-ID: %w", err)
		}
		return conv, true, nil
	}
	return 0, false, nil
}

// Conversation implements Store.
func (s *Store) Conversation(ctx context.Context, id int64) (store.Conversation, error) {
	// DESIGN.md §14: a merged conversation answers to its target.
	id, err := resolveMerged(ctx, s.read, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Conversation{}, err
	}
	if err != nil {
		return store.Conversation{}, fmt.Errorf("store: reading conversation %d: %w", id, err)
	}
	c := store.Conversation{ID: id}
	var status string
	var created, updated int64
	err = s.read.QueryRowContext(ctx, `SELECT inbox, owner, subject, status, created, updated FROM conversations WHERE id = ?`, id).
		Scan(&c.Inbox, &c.Owner, &c.Subject, &status, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Conversation{}, store.ErrNotFound
	}
	if err != nil {
		return store.Conversation{}, fmt.Errorf("store: reading conversation %d: %w", id, err)
	}
	c.Status, c.Created, c.Updated = store.Status(status), fromMillis(created), fromMillis(updated)
	rows, err := s.read.QueryContext(ctx, `SELECT address FROM participants WHERE conversation_id = ? ORDER BY position`, id)
	if err != nil {
		return store.Conversation{}, fmt.Errorf("store: reading participants of %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return store.Conversation{}, fmt.Errorf("store: reading participants of %d: %w", id, err)
		}
		c.Participants = append(c.Participants, a)
	}
	if err := rows.Err(); err != nil {
		return store.Conversation{}, err
	}
	if err := s.conversationExtras(ctx, &c); err != nil {
		return store.Conversation{}, fmt.Errorf("store: reading conversation %d: %w", id, err)
	}
	if err := s.conversationKeywords(ctx, &c); err != nil {
		return store.Conversation{}, err
	}
	return c, nil
}

// Message implements Store.
func (s *Store) Message(ctx context.Context, id int64) (store.Message, error) {
	m := store.Message{ID: id}
	var kind, role, bcc string
	var received int64
	err := s.read.QueryRowContext(ctx, `SELECT conversation_id, kind, sender, sender_role, message_id_header, received, size, hidden_bcc, side FROM messages WHERE id = ?`, id).
		Scan(&m.Conversation, &kind, &m.Sender, &role, &m.MessageIDHeader, &received, &m.Size, &bcc, &m.Side)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, store.ErrNotFound
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("store: reading message %d: %w", id, err)
	}
	m.Kind, m.SenderRole, m.Received, m.HiddenBCC = store.Kind(kind), store.SenderRole(role), fromMillis(received), splitList(bcc)
	return m, nil
}

// MessageByHeaderID implements Store.
func (s *Store) MessageByHeaderID(ctx context.Context, id string) (store.Message, error) {
	var msg int64
	err := s.read.QueryRowContext(ctx, `SELECT message_id FROM message_ids WHERE message_id_header = ? AND message_id IS NOT NULL`, id).Scan(&msg)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Message{}, store.ErrNotFound
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("store: looking up Message-ID: %w", err)
	}
	return s.Message(ctx, msg)
}

// MessageRaw implements Store.
func (s *Store) MessageRaw(ctx context.Context, id int64) ([]byte, error) {
	var raw []byte
	err := s.read.QueryRowContext(ctx, `SELECT raw FROM messages WHERE id = ?`, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading message %d: %w", id, err)
	}
	return raw, nil
}

// NextMessageNumber implements Store.
func (s *Store) NextMessageNumber(ctx context.Context) (int64, error) {
	return s.reserve(ctx, "message")
}

// NextConversationNumber implements Store.
func (s *Store) NextConversationNumber(ctx context.Context) (int64, error) {
	return s.reserve(ctx, "conversation")
}

func (s *Store) reserve(ctx context.Context, sequence string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		n, err = nextval(ctx, tx, sequence)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: reserving a %s number: %w", sequence, err)
	}
	return n, nil
}

// AddInbound implements Store.
func (s *Store) AddInbound(ctx context.Context, in store.Inbound) (store.InboundResult, error) {
	var res store.InboundResult
	meta := s.computeMeta(in.Raw) // outside the transaction: parsing is not the writer's work
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) (err error) {
		res, err = s.addInbound(ctx, tx, ch, in, meta)
		return err
	})
	if err != nil {
		return store.InboundResult{}, fmt.Errorf("store: storing inbound message: %w", err)
	}
	return res, nil
}

// addInbound stores one inbound message in tx (AddInbound, ImportInbound)
// and records the change in ch, none for a duplicate; meta is its FETCH
// metadata, computed outside the transaction.
func (s *Store) addInbound(ctx context.Context, tx *sql.Tx, ch *changes, in store.Inbound, meta derived) (store.InboundResult, error) {
	var res store.InboundResult
	var before []store.Folder // where a conversation it may reopen was
	err := func() error {
		if in.MessageIDHeader != "" {
			// The conversation is the stored message's: an index row first
			// written as a reference keeps the conversation that referred to
			// it, which need not be where the message itself went.
			err := tx.QueryRowContext(ctx, `SELECT m.conversation_id, m.id FROM message_ids i JOIN messages m ON m.id = i.message_id
				WHERE i.message_id_header = ?`, in.MessageIDHeader).Scan(&res.Conversation, &res.Message)
			if err == nil {
				res.Duplicate = true
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		now := millis(in.Received)
		conv := in.Conversation
		if conv == 0 {
			var err error
			if conv, err = nextval(ctx, tx, "conversation"); err != nil {
				return err
			}
			status := in.NewStatus
			if status == "" {
				status = store.StatusOpen
			}
			if !slices.Contains([]store.Status{store.StatusOpen, store.StatusClosed, store.StatusSpam}, status) {
				return fmt.Errorf("a new conversation cannot be %q", status)
			}
			// The conversation has its status before its first message
			// gets folder entries (insertMessage, enterFolders), so they
			// are the ones a full sync would give (DESIGN.md §6).
			nc := store.NewConversation{Inbox: in.Inbox, Owner: in.Owner, Subject: in.Subject, NormSubject: in.NormSubject, Assignee: in.NewAssignee}
			var turn []store.Event
			if nc.Assignee == "" && in.AssignInTurn != nil && len(in.AssignInTurn.Agents) > 0 {
				var err error
				if nc.Assignee, err = takeTurn(ctx, tx, in.Inbox, in.AssignInTurn.Agents); err != nil {
					return err
				}
				turn = []store.Event{{Type: "assigned", At: in.Received, Quiet: in.AssignInTurn.QuietEvent,
					Text: "Assigned to " + nc.Assignee + " in turn (round-robin)"}}
			}
			if err := insertConversation(ctx, tx, conv, nc, status, now); err != nil {
				return err
			}
			if err := addTags(ctx, tx, conv, in.NewTags); err != nil {
				return err
			}
			res.Assignee = nc.Assignee
			in.Events = append(turn, in.Events...)
		} else if in.Reopen {
			var err error
			if before, err = foldersOf(ctx, tx, conv); err != nil {
				return err
			}
			if err := setStatus(ctx, tx, conv, store.StatusOpen); err != nil {
				return err
			}
		}
		joining, over, err := withinCap(ctx, tx, conv, in.NewParticipants, in.Cap)
		if err != nil {
			return err
		}
		if err := addParticipants(ctx, tx, conv, joining); err != nil {
			return err
		}
		if len(over) > 0 {
			// Issue 13: the cap counted here, where two messages at once
			// cannot both see room for one more.
			in.Events = append(in.Events, store.Event{Type: "participants-over-cap", At: in.Received,
				Text: fmt.Sprintf("Not added as participants, the cap of %d is reached: %s", in.Cap.Max, strings.Join(over, ", "))})
		}
		msg, err := nextval(ctx, tx, "message")
		if err != nil {
			return err
		}
		res.Conversation, res.Message = conv, msg
		row := messageRow{
			id: msg, conv: conv, kind: store.KindInbound, sender: in.Sender, senderRole: in.SenderRole, messageID: in.MessageIDHeader,
			received: now, raw: in.Raw, seenIDs: in.SeenMessageIDs, meta: meta, automatic: in.Automatic,
		}
		if in.Side != nil {
			row.kind, row.side, row.replyTo, row.replyToCut = store.KindSide, in.Side.Number, in.ServedReplyTo, in.ServedCut
			if err := writeSide(ctx, tx, conv, *in.Side); err != nil {
				return err
			}
		}
		if err := s.insertMessage(ctx, tx, row); err != nil {
			return err
		}
		if err := s.updateConversation(ctx, tx, store.ConversationUpdate{Conversation: conv, AddFollowers: in.NewFollowers, Events: in.Events}); err != nil {
			return err
		}
		if in.Conversation == 0 && !in.Automatic {
			// DESIGN.md §7: followers added as it opens are told of it.
			for _, f := range in.NewFollowers {
				if _, err := tx.ExecContext(ctx, `UPDATE follower_notices SET since = ?, notified_through = ?, pending_since = COALESCE(pending_since, ?)
					WHERE conversation_id = ? AND address = ? AND address != ?`, msg-1, msg-1, now, conv, f, strings.ToLower(in.Sender)); err != nil {
					return err
				}
			}
		}
		ch.Conversation(conv, false, before)
		return nil
	}()
	return res, err
}

// AddOutbound implements Store.
func (s *Store) AddOutbound(ctx context.Context, out store.Outbound) error {
	meta := s.computeMeta(out.Raw)
	err := s.commit(ctx, func(tx *sql.Tx, ch *changes) error {
		return s.addOutbound(ctx, tx, ch, out, meta)
	})
	if err != nil {
		return fmt.Errorf("store: recording outbound message: %w", err)
	}
	return nil
}

// addOutbound records and queues one outbound message in tx (AddOutbound,
// QueueAutoAck, QueueNotification) and records what it changed in ch;
// meta is its FETCH metadata, computed outside the transaction.
func (s *Store) addOutbound(ctx context.Context, tx *sql.Tx, ch *changes, out store.Outbound, meta derived) error {
	if out.Hold != nil && out.NewConversation == nil {
		// DESIGN.md §5 item 10; sqlite's one writer makes the check and
		// the write one step.
		var n int
		if err := tx.QueryRowContext(ctx, collisionQuery, out.Conversation, out.Hold.After, out.Agent).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrCollision
		}
	}
	if out.NewConversation == nil && out.Update != nil {
		// Where the conversation was, should its quick actions move it.
		before, err := foldersOf(ctx, tx, out.Conversation)
		if err != nil {
			return err
		}
		ch.Outbound(out, before)
	} else {
		ch.Outbound(out, nil)
	}
	now := millis(out.Received)
	if nc := out.NewConversation; nc != nil {
		if err := insertConversation(ctx, tx, out.Conversation, *nc, store.StatusOpen, now); err != nil {
			return err
		}
	}
	row := messageRow{
		id: out.Message, conv: out.Conversation, kind: out.Kind, sender: out.Agent, messageID: out.MessageIDHeader,
		received: now, raw: out.Raw, hiddenBCC: out.HiddenBCC, meta: meta,
		replyTo: out.ServedReplyTo, replyToCut: out.ServedCut, outbound: true,
	}
	if out.Side != nil {
		row.side = out.Side.Number
		if err := writeSide(ctx, tx, out.Conversation, *out.Side); err != nil {
			return err
		}
	}
	if err := s.insertMessage(ctx, tx, row); err != nil {
		return err
	}
	if err := recordSubmission(ctx, tx, out.Agent, out.ClientMessageID, out.Message); err != nil {
		return err
	}
	if out.Update != nil {
		u := *out.Update
		u.Conversation = out.Conversation
		if err := s.updateConversation(ctx, tx, u); err != nil {
			return err
		}
	}
	if _, over, err := withinCap(ctx, tx, out.Conversation, out.NewParticipants, out.Cap); err != nil {
		return err
	} else if len(over) > 0 {
		return store.ErrParticipantCap
	}
	if err := addParticipants(ctx, tx, out.Conversation, out.NewParticipants); err != nil {
		return err
	}
	// The author has read what they wrote.
	if out.Kind != store.KindNotification {
		if _, err := tx.ExecContext(ctx, `INSERT INTO seen (agent, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, out.Agent, out.Message); err != nil {
			return err
		}
	}
	if !store.IsQueued(out.Kind) || len(out.Recipients) == 0 {
		return nil
	}
	qid, err := nextval(ctx, tx, "outbound")
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbound_messages (id, message_id, mail_from, created) VALUES (?, ?, ?, ?)`,
		qid, out.Message, out.MailFrom, now); err != nil {
		return err
	}
	for _, r := range out.Recipients {
		if _, err := tx.ExecContext(ctx, `INSERT INTO outbound_recipients (outbound_id, recipient, state, attempts, next_attempt, last_error)
			VALUES (?, ?, 'queued', 0, ?, '') ON CONFLICT DO NOTHING`, qid, r, now); err != nil {
			return err
		}
	}
	return nil
}

func insertConversation(ctx context.Context, tx *sql.Tx, id int64, c store.NewConversation, status store.Status, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, inbox, owner, subject, norm_subject, status, created, updated, assignee)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, c.Inbox, c.Owner, c.Subject, c.NormSubject, status, now, now, c.Assignee)
	return err
}

// withinCap splits addresses about to join a conversation into those the
// cap has room for and those over it, counting the participants in tx;
// ones already participants are neither.
func withinCap(ctx context.Context, tx *sql.Tx, conv int64, addrs []string, cp store.ParticipantCap) (joining, over []string, err error) {
	if len(addrs) == 0 {
		return nil, nil, nil
	}
	var have []string
	rows, err := tx.QueryContext(ctx, `SELECT address FROM participants WHERE conversation_id = ?`, conv)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			rows.Close()
			return nil, nil, err
		}
		have = append(have, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	n := len(have)
	for _, a := range addrs {
		if slices.Contains(have, a) || slices.Contains(joining, a) {
			continue
		}
		if cp.Enforce && n >= cp.Max {
			over = append(over, a)
			continue
		}
		joining = append(joining, a)
		n++
	}
	return joining, over, nil
}

func addParticipants(ctx context.Context, tx *sql.Tx, conv int64, addrs []string) error {
	for _, p := range addrs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO participants (conversation_id, address, position)
			VALUES (?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM participants WHERE conversation_id = ?))
			ON CONFLICT (conversation_id, address) DO NOTHING`, conv, p, conv); err != nil {
			return err
		}
	}
	return nil
}

type messageRow struct {
	id, conv   int64
	kind       store.Kind
	sender     string
	senderRole store.SenderRole
	messageID  string
	received   int64
	raw        []byte
	hiddenBCC  []string
	automatic  bool // Inbound.Automatic
	seenIDs    []string
	meta       derived // FETCH metadata (nil: computed at the first FETCH) and SEARCH tokens
	replyTo    string  // MailboxEntry.ReplyTo
	replyToCut int64
	side       int  // for KindSide
	outbound   bool // an agent's message (AddOutbound)
}

// insertMessage writes a message, indexes its Message-IDs, touches its
// conversation, gives it its entries in the shared folders the conversation
// is in, and files an agent's reply or note in their Sent.
func (s *Store) insertMessage(ctx context.Context, tx *sql.Tx, m messageRow) error {
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM conversations WHERE id = ?`, m.conv).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages (id, conversation_id, kind, sender, sender_role, message_id_header, received, size, hidden_bcc, raw, side)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.id, m.conv, m.kind, m.sender, m.senderRole, m.messageID, m.received, len(m.raw), joinList(m.hiddenBCC), m.raw, m.side); err != nil {
		return err
	}
	if m.replyTo != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO served_reply_to (message_id, reply_to, cut) VALUES (?, ?, ?)`,
			m.id, m.replyTo, m.replyToCut); err != nil {
			return err
		}
	}
	if err := insertMeta(ctx, tx, m.id, m.meta.meta); err != nil {
		return err
	}
	// SEARCH's index, in the message's transaction (searchpending.go).
	index := s.queueSearch
	if m.meta.indexNow {
		index = indexSearch
	}
	if err := index(ctx, tx, m.id, m.meta.search, m.meta.searchOK); err != nil {
		return err
	}
	if m.kind == store.KindNotification {
		// Not an update, in no folder (store/notices.go); its Message-ID is
		// indexed, so that a reply to it threads.
		return indexMessageID(ctx, tx, m)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE conversations SET updated = ? WHERE id = ? AND updated < ?`, m.received, m.conv, m.received); err != nil {
		return err
	}
	if store.IsUpdate(m.kind) && !m.automatic {
		if err := markPending(ctx, tx, m.conv, m.sender, m.received); err != nil {
			return err
		}
	}
	if err := indexMessageID(ctx, tx, m); err != nil {
		return err
	}
	if m.kind == store.KindReply {
		// The conversation's earlier messages are \Answered now (DESIGN.md
		// §6): sessions read its entries again.
		if err := noteRewrite(ctx, tx, []int64{m.conv}); err != nil {
			return err
		}
		if err := touchConversations(ctx, tx, m.conv); err != nil { // sqlite_modseq.go
			return err
		}
	}
	if (m.kind == store.KindReply || m.kind == store.KindNote || m.kind == store.KindSide && m.outbound) && m.sender != "" {
		if err := fileSent(ctx, tx, m.sender, m.id, m.received); err != nil {
			return err
		}
	}
	return enterFolders(ctx, tx, m.conv, m.id)
}

// indexMessageID records a message's Message-ID and the ones it refers to.
func indexMessageID(ctx context.Context, tx *sql.Tx, m messageRow) error {
	if m.messageID != "" {
		// A row that only recorded a reference gets its message now.
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_ids (message_id_header, conversation_id, message_id) VALUES (?, ?, ?)
			ON CONFLICT (message_id_header) DO UPDATE SET message_id = excluded.message_id WHERE message_ids.message_id IS NULL`,
			m.messageID, m.conv, m.id); err != nil {
			return err
		}
	}
	for _, ref := range m.seenIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_ids (message_id_header, conversation_id, message_id) VALUES (?, ?, NULL)
			ON CONFLICT (message_id_header) DO NOTHING`, ref, m.conv); err != nil {
			return err
		}
	}
	return nil
}
