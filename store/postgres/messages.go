package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/supportgate/supportgate/store"
)

// ConversationByMessageID implements Store.
func (s *Store) ConversationByMessageID(ctx context.Context, ids []string) (int64, bool, error) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		var conv int64
		err := s.pool.QueryRow(ctx, `SELECT conversation_id FROM message_ids WHERE message_id_header = $1`, id).Scan(&conv)
		if errors.Is(err, pgx.ErrNoRows) {
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
	c, err := readConversation(ctx, s.pool, id) // one statement: one snapshot
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Conversation{}, fmt.Errorf("store: reading conversation %d: %w", id, err)
	}
	return c, err
}

// readConversation reads a conversation with its participants, followers
// and keywords in q.
func readConversation(ctx context.Context, q querier, id int64) (store.Conversation, error) {
	// One statement (one snapshot, one round trip) for the row, its
	// participants, followers and keywords: five round trips in a
	// transaction of their own were most of a STORE's reads under
	// imaptest's stress (issue 18). DESIGN.md §14: a merged conversation
	// answers to its target, followed through at most maxMergeChain merges.
	for i := 1; ; i++ {
		c := store.Conversation{ID: id}
		var status string
		var created, updated, into int64
		var kws []string
		err := q.QueryRow(ctx, `SELECT inbox, owner, subject, status, created, updated, read_only, assignee, merged_into,
			ARRAY(SELECT address FROM participants WHERE conversation_id = c.id ORDER BY position),
			ARRAY(SELECT address FROM followers WHERE conversation_id = c.id ORDER BY address),
			ARRAY(SELECT keyword FROM conversation_keywords WHERE conversation_id = c.id ORDER BY lower(keyword), keyword)
			FROM conversations c WHERE id = $1`, id).
			Scan(&c.Inbox, &c.Owner, &c.Subject, &status, &created, &updated, &c.ReadOnly, &c.Assignee, &into,
				&c.Participants, &c.Followers, &kws)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.Conversation{}, store.ErrNotFound
		}
		if err != nil {
			return store.Conversation{}, err
		}
		if into != 0 && i < maxMergeChain {
			id = into
			continue
		}
		c.Status, c.Created, c.Updated = store.Status(status), fromMillis(created), fromMillis(updated)
		if len(c.Participants) == 0 {
			c.Participants = nil
		}
		if len(c.Followers) == 0 {
			c.Followers = nil
		}
		c.Flagged, c.Tags = store.SplitKeywords(kws)
		return c, nil
	}
}

// strs runs a query of one text column and returns its values.
func strs(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	l, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(l) == 0 {
		l = nil
	}
	return l, err
}

// messageColumns selects a Message (scanMessage reads it).
const messageColumns = `SELECT id, conversation_id, kind, sender, sender_role, message_id_header, received, size, hidden_bcc, side FROM messages `

func scanMessage(row pgx.Row) (store.Message, error) {
	var m store.Message
	var kind, role, bcc string
	var received int64
	var side int64
	err := row.Scan(&m.ID, &m.Conversation, &kind, &m.Sender, &role, &m.MessageIDHeader, &received, &m.Size, &bcc, &side)
	m.Side = int(side)
	m.Kind, m.SenderRole, m.Received, m.HiddenBCC = store.Kind(kind), store.SenderRole(role), fromMillis(received), splitList(bcc)
	return m, err
}

// Message implements Store.
func (s *Store) Message(ctx context.Context, id int64) (store.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, messageColumns+`WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Message{}, store.ErrNotFound
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("store: reading message %d: %w", id, err)
	}
	return m, nil
}

// MessageByHeaderID implements Store.
func (s *Store) MessageByHeaderID(ctx context.Context, id string) (store.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, messageColumns+
		`WHERE id = (SELECT message_id FROM message_ids WHERE message_id_header = $1)`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Message{}, store.ErrNotFound
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("store: looking up Message-ID: %w", err)
	}
	return m, nil
}

// MessageRaw implements Store.
func (s *Store) MessageRaw(ctx context.Context, id int64) ([]byte, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT raw FROM messages WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: reading message %d: %w", id, err)
	}
	return raw, nil
}

// NextMessageNumber implements Store.
func (s *Store) NextMessageNumber(ctx context.Context) (int64, error) {
	n, err := nextval(ctx, s.pool, "message_numbers")
	if err != nil {
		return 0, fmt.Errorf("store: reserving a message number: %w", err)
	}
	return n, nil
}

// NextConversationNumber implements Store.
func (s *Store) NextConversationNumber(ctx context.Context) (int64, error) {
	n, err := nextval(ctx, s.pool, "conversation_numbers")
	if err != nil {
		return 0, fmt.Errorf("store: reserving a conversation number: %w", err)
	}
	return n, nil
}

// AddInbound implements Store.
func (s *Store) AddInbound(ctx context.Context, in store.Inbound) (store.InboundResult, error) {
	var res store.InboundResult
	meta := s.computeMeta(in.Raw) // outside the transaction
	err := s.commit(ctx, func(tx pgx.Tx, ch *changes) (err error) {
		res, err = s.addInbound(ctx, tx, ch, in, meta, true)
		return err
	})
	if err != nil {
		return store.InboundResult{}, fmt.Errorf("store: storing inbound message: %w", err)
	}
	return res, nil
}

// Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)).
const (
	lockMessageID = 1 // an inbound Message-ID being stored
	lockAutoAck   = 2 // an inbox and recipient's acknowledgement count
)

// addInbound stores one inbound message in tx (AddInbound, ImportInbound)
// and records the change in ch, none for a duplicate.
//
// lastOne: in is the transaction's only write (AddInbound), so its folder
// entries may wait until the end of the transaction (changes.last).
func (s *Store) addInbound(ctx context.Context, tx pgx.Tx, ch *changes, in store.Inbound, meta derived, lastOne bool) (store.InboundResult, error) {
	var res store.InboundResult
	var before []store.Folder // where a conversation it reopens was
	if in.MessageIDHeader != "" {
		// Two nodes receiving the same message at once: the second waits
		// here until the first commits, then finds it (DESIGN.md §3 item 5).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockMessageID, in.MessageIDHeader); err != nil {
			return res, err
		}
		// The conversation is the stored message's: an index row first
		// written as a reference keeps the conversation that referred to
		// it, which need not be where the message itself went.
		err := tx.QueryRow(ctx, `SELECT m.conversation_id, m.id FROM message_ids i JOIN messages m ON m.id = i.message_id
			WHERE i.message_id_header = $1`, in.MessageIDHeader).Scan(&res.Conversation, &res.Message)
		if err == nil {
			res.Duplicate = true
			return res, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return res, err
		}
	}
	now := millis(in.Received)
	conv := in.Conversation
	if conv == 0 {
		var err error
		if conv, err = nextval(ctx, tx, "conversation_numbers"); err != nil {
			return res, err
		}
		status := in.NewStatus
		if status == "" {
			status = store.StatusOpen
		}
		if !slices.Contains([]store.Status{store.StatusOpen, store.StatusClosed, store.StatusSpam}, status) {
			return res, fmt.Errorf("a new conversation cannot be %q", status)
		}
		nc := store.NewConversation{Inbox: in.Inbox, Owner: in.Owner, Subject: in.Subject, NormSubject: in.NormSubject, Assignee: in.NewAssignee}
		var turn []store.Event
		if nc.Assignee == "" && in.AssignInTurn != nil && len(in.AssignInTurn.Agents) > 0 {
			if nc.Assignee, err = takeTurn(ctx, tx, in.Inbox, in.AssignInTurn.Agents); err != nil {
				return res, err
			}
			turn = []store.Event{{Type: "assigned", At: in.Received, Quiet: in.AssignInTurn.QuietEvent,
				Text: "Assigned to " + nc.Assignee + " in turn (round-robin)"}}
		}
		if err := insertConversation(ctx, tx, conv, nc, status, now); err != nil {
			return res, err
		}
		if err := addTags(ctx, tx, conv, in.NewTags); err != nil {
			return res, err
		}
		res.Assignee = nc.Assignee
		in.Events = append(turn, in.Events...)
	} else {
		if err := lockConversation(ctx, tx, conv); err != nil {
			return res, err
		}
		if in.Reopen {
			var err error
			if before, err = foldersOf(ctx, tx, conv); err != nil {
				return res, err
			}
			if err := setStatus(ctx, tx, conv, store.StatusOpen); err != nil {
				return res, err
			}
		}
	}
	joining, over, err := withinCap(ctx, tx, conv, in.NewParticipants, in.Cap)
	if err != nil {
		return res, err
	}
	if err := addParticipants(ctx, tx, conv, joining); err != nil {
		return res, err
	}
	if len(over) > 0 {
		// Issue 13: the cap counted under the conversation's lock, where
		// two messages at once cannot both see room for one more.
		in.Events = append(in.Events, store.Event{Type: "participants-over-cap", At: in.Received,
			Text: fmt.Sprintf("Not added as participants, the cap of %d is reached: %s", in.Cap.Max, strings.Join(over, ", "))})
	}
	msg, err := nextval(ctx, tx, "message_numbers")
	if err != nil {
		return res, err
	}
	res.Conversation, res.Message = conv, msg
	row := messageRow{
		id: msg, conv: conv, kind: store.KindInbound, sender: in.Sender, senderRole: in.SenderRole, messageID: in.MessageIDHeader,
		received: now, raw: in.Raw, seenIDs: in.SeenMessageIDs, meta: meta, automatic: in.Automatic, noEntries: true,
	}
	if in.Side != nil {
		row.kind, row.side, row.replyTo, row.replyToCut = store.KindSide, in.Side.Number, in.ServedReplyTo, in.ServedCut
		if err := writeSide(ctx, tx, conv, *in.Side); err != nil {
			return res, err
		}
	}
	if err := s.insertMessage(ctx, tx, row); err != nil {
		return res, err
	}
	// The counter rows are held from the message's folder entries until
	// COMMIT. Without followers and events to add after them, nothing
	// changes the conversation's folders any more: the entries are the
	// transaction's last write (changes.last), after its NOTIFY.
	if len(in.NewFollowers) > 0 || len(in.Events) > 0 {
		if err := enterFolders(ctx, tx, conv, msg); err != nil {
			return res, err
		}
		if err := s.updateConversation(ctx, tx, store.ConversationUpdate{Conversation: conv, AddFollowers: in.NewFollowers, Events: in.Events}); err != nil {
			return res, err
		}
	} else if lastOne {
		ch.last = func() error { return enterFolders(ctx, tx, conv, msg) }
	} else if err := enterFolders(ctx, tx, conv, msg); err != nil {
		return res, err
	}
	if in.Conversation == 0 && !in.Automatic {
		// DESIGN.md §7: followers added as it opens are told of it.
		for _, f := range in.NewFollowers {
			if _, err := tx.Exec(ctx, `UPDATE follower_notices SET since = $1, notified_through = $1, pending_since = COALESCE(pending_since, $2)
				WHERE conversation_id = $3 AND address = $4 AND address != $5`, msg-1, now, conv, f, strings.ToLower(in.Sender)); err != nil {
				return res, err
			}
		}
	}
	ch.Conversation(conv, false, before)
	return res, nil
}

// AddOutbound implements Store.
func (s *Store) AddOutbound(ctx context.Context, out store.Outbound) error {
	meta := s.computeMeta(out.Raw)
	return s.change(ctx, "recording outbound message", func(tx pgx.Tx, ch *changes) error {
		return s.addOutbound(ctx, tx, ch, out, meta)
	})
}

// addOutbound records and queues one outbound message in tx (AddOutbound,
// QueueAutoAck, QueueNotification) and records what it changed in ch.
func (s *Store) addOutbound(ctx context.Context, tx pgx.Tx, ch *changes, out store.Outbound, meta derived) error {
	now := millis(out.Received)
	var before []store.Folder // where the conversation was, should its quick actions move it
	if nc := out.NewConversation; nc != nil {
		if err := insertConversation(ctx, tx, out.Conversation, *nc, store.StatusOpen, now); err != nil {
			return err
		}
	} else if err := lockConversation(ctx, tx, out.Conversation); err != nil {
		return err
	} else if err := checkCollision(ctx, tx, out); err != nil {
		return err
	} else if out.Update != nil {
		if before, err = foldersOf(ctx, tx, out.Conversation); err != nil {
			return err
		}
	}
	ch.Outbound(out, before)
	if out.Update != nil {
		// The update rewrites entries after the message took its UIDs:
		// the rewrites counter is taken first, in the order every other
		// writer takes the counters (rewrites, modseq, UIDs).
		if _, err := tx.Exec(ctx, `SELECT 1 FROM counters WHERE name = 'rewrites' FOR UPDATE`); err != nil {
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
	// What needs no answer but the submission's: one round trip (a
	// pipeline). A client's second submission of the same message
	// (ErrDuplicateSubmission) rolls the transaction back, before its
	// quick actions and participants.
	b := &pgx.Batch{}
	recordSubmission(b, out.Agent, out.ClientMessageID, out.Message)
	// The author has read what they wrote.
	if out.Kind != store.KindNotification {
		b.Queue(`INSERT INTO seen (agent, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, out.Agent, out.Message)
	}
	if store.IsQueued(out.Kind) && len(out.Recipients) > 0 {
		b.Queue(`WITH q AS (INSERT INTO outbound_messages (id, message_id, mail_from, created)
				VALUES (nextval('outbound_numbers'), $1, $2, $3) RETURNING id)
			INSERT INTO outbound_recipients (outbound_id, recipient, state, attempts, next_attempt, last_error)
			SELECT q.id, r, 'queued', 0, $3, '' FROM q, unnest($4::text[]) AS r ON CONFLICT DO NOTHING`,
			out.Message, out.MailFrom, now, out.Recipients)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
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
	return nil
}

func insertConversation(ctx context.Context, tx pgx.Tx, id int64, c store.NewConversation, status store.Status, now int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO conversations (id, inbox, owner, subject, norm_subject, status, created, updated, assignee)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, c.Inbox, c.Owner, c.Subject, c.NormSubject, status, now, now, c.Assignee)
	return err
}

// withinCap splits addresses about to join a conversation into those the
// cap has room for and those over it, counting the participants in tx
// (under the conversation's lock); ones already participants are neither.
func withinCap(ctx context.Context, tx pgx.Tx, conv int64, addrs []string, cp store.ParticipantCap) (joining, over []string, err error) {
	if len(addrs) == 0 {
		return nil, nil, nil
	}
	have, err := strs(ctx, tx, `SELECT address FROM participants WHERE conversation_id = $1`, conv)
	if err != nil {
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

func addParticipants(ctx context.Context, tx pgx.Tx, conv int64, addrs []string) error {
	for _, p := range addrs {
		if _, err := tx.Exec(ctx, `INSERT INTO participants (conversation_id, address, position)
			VALUES ($1, $2, (SELECT COALESCE(MAX(position), 0) + 1 FROM participants WHERE conversation_id = $1))
			ON CONFLICT (conversation_id, address) DO NOTHING`, conv, p); err != nil {
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
	noEntries  bool // the caller gives the message its folder entries (addInbound)
	seenIDs    []string
	meta       derived // FETCH metadata (nil: computed at the first FETCH) and SEARCH tokens
	replyTo    string  // MailboxEntry.ReplyTo
	replyToCut int64
	side       int  // for KindSide
	outbound   bool // an agent's message (AddOutbound)
}

// insertMessage writes a message, indexes its Message-IDs, touches its
// conversation, gives it its entries in the shared folders the conversation
// is in, and files an agent's reply or note in their Sent. The caller holds
// the conversation's lock.
func (s *Store) insertMessage(ctx context.Context, tx pgx.Tx, m messageRow) error {
	// The writes that need no answer go in one round trip (a pipeline):
	// they were a round trip each, under the conversation's lock (issue 18).
	b := &pgx.Batch{}
	queueMessage(b, m)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if m.kind == store.KindNotification {
		return nil
	}
	if m.kind == store.KindReply {
		// The conversation's earlier messages are \Answered now (DESIGN.md
		// §6): sessions read its entries again.
		if err := noteRewrite(ctx, tx, []int64{m.conv}); err != nil {
			return err
		}
		if err := touchConversations(ctx, tx, m.conv); err != nil { // modseq.go
			return err
		}
	}
	if (m.kind == store.KindReply || m.kind == store.KindNote || m.kind == store.KindSide && m.outbound) && m.sender != "" {
		if err := fileSent(ctx, tx, m.sender, m.id, m.received); err != nil {
			return err
		}
	}
	if m.noEntries {
		return nil
	}
	return enterFolders(ctx, tx, m.conv, m.id)
}

// queueMessage queues the writes of insertMessage that need no answer:
// the message's row, its served Reply-To, FETCH metadata and SEARCH
// document, the conversation's time, followers' pending notices and its
// Message-IDs.
func queueMessage(b *pgx.Batch, m messageRow) {
	raw := m.raw
	if raw == nil {
		raw = []byte{}
	}
	b.Queue(`INSERT INTO messages (id, conversation_id, kind, sender, sender_role, message_id_header, received, size, hidden_bcc, raw, side)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		m.id, m.conv, m.kind, m.sender, m.senderRole, m.messageID, m.received, len(raw), joinList(m.hiddenBCC), raw, m.side)
	if m.replyTo != "" {
		b.Queue(`INSERT INTO served_reply_to (message_id, reply_to, cut) VALUES ($1, $2, $3)`, m.id, m.replyTo, m.replyToCut)
	}
	queueMeta(b, m.id, m.meta.meta)
	// SEARCH's index, in the message's transaction (search.go).
	queueSearch(b, m.id, m.meta.search, m.meta.searchOK)
	if m.kind == store.KindNotification {
		// Not an update, in no folder (store/notices.go); its Message-ID is
		// indexed, so that a reply to it threads.
		queueMessageIDs(b, m)
		return
	}
	b.Queue(`UPDATE conversations SET updated = $1 WHERE id = $2 AND updated < $1`, m.received, m.conv)
	if store.IsUpdate(m.kind) && !m.automatic {
		markPending(b, m.conv, m.sender, m.received)
	}
	queueMessageIDs(b, m)
}

// queueMessageIDs records a message's Message-ID and the ones it refers
// to, in its pipeline.
func queueMessageIDs(b *pgx.Batch, m messageRow) {
	if m.messageID != "" {
		// A row that only recorded a reference gets its message now.
		b.Queue(`INSERT INTO message_ids (message_id_header, conversation_id, message_id) VALUES ($1, $2, $3)
			ON CONFLICT (message_id_header) DO UPDATE SET message_id = excluded.message_id WHERE message_ids.message_id IS NULL`,
			m.messageID, m.conv, m.id).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() == 0 && m.kind == store.KindInbound {
				// Stored meanwhile by a transaction that did not take the
				// Message-ID's lock (an import): run again, and find it.
				return errRetry
			}
			return nil
		})
	}
	if len(m.seenIDs) > 0 {
		b.Queue(`INSERT INTO message_ids (message_id_header, conversation_id, message_id)
			SELECT r, $2, NULL FROM unnest($1::text[]) AS r ON CONFLICT (message_id_header) DO NOTHING`, m.seenIDs, m.conv)
	}
}
