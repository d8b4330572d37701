package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order, each once, each in its own transaction,
// by one node at a time (an advisory lock): several nodes starting at once
// migrate once. Never edit one that has shipped: add a new one; each is
// written to run again on a database that has it.
//
// The tables are store/sqlite's (read its migrations for what each column
// means), with times in milliseconds as there, so that a store can be
// copied between the engines keeping its numbers. Text columns compare and
// sort bytewise (COLLATE "C", as SQLite does) whatever the database's
// locale: queue recipients are numbered by address order.
var migrations = []string{
	// 1: the schema of store/sqlite's migrations 1 to 14.
	strings.ReplaceAll(schema1, "ctext", `text COLLATE "C"`),
	// 2: secrets every node must share (secrets.go).
	`CREATE TABLE IF NOT EXISTS secrets (name text COLLATE "C" PRIMARY KEY, value bytea NOT NULL)`,
	// 3: the quotas' counts every node shares (rates.go).
	ratesSchema,
	// 4: side conversations (issue 17, side.go).
	strings.ReplaceAll(sideSchema, "ctext", `text COLLATE "C"`),
	// 5: merged conversations (issue 17, merge.go).
	mergeSchema,
	// 6: the SEARCH index (issue 18), in search.go.
	searchSchema,
	// 7: what the collision hold reads (issue 18), in collision.go.
	collisionSchema,
}

const schema1 = `
CREATE TABLE IF NOT EXISTS counters (name ctext PRIMARY KEY, value bigint NOT NULL);
INSERT INTO counters (name, value) VALUES
	('uid:INBOX', 0), ('uid:Mine', 0), ('uid:Unassigned', 0), ('uid:Closed', 0), ('uid:Spam', 0),
	('rewrites', 0), ('rewrite_log_floor', 0), ('modseq', 1), ('private-uidvalidity', 0)
	ON CONFLICT DO NOTHING;
CREATE SEQUENCE IF NOT EXISTS message_numbers;
CREATE SEQUENCE IF NOT EXISTS conversation_numbers;
CREATE SEQUENCE IF NOT EXISTS outbound_numbers;
CREATE TABLE IF NOT EXISTS conversations (
	id bigint PRIMARY KEY,
	inbox ctext NOT NULL,
	owner ctext NOT NULL,
	subject ctext NOT NULL,
	norm_subject ctext NOT NULL DEFAULT '',
	status ctext NOT NULL,
	created bigint NOT NULL,
	updated bigint NOT NULL,
	read_only boolean NOT NULL DEFAULT false,
	assignee ctext NOT NULL DEFAULT '',
	modseq bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_continuity ON conversations (inbox, owner, status, norm_subject, updated);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated, id);
CREATE TABLE IF NOT EXISTS participants (
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	address ctext NOT NULL,
	position integer NOT NULL,
	PRIMARY KEY (conversation_id, address)
);
CREATE TABLE IF NOT EXISTS messages (
	id bigint PRIMARY KEY,
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	kind ctext NOT NULL,
	sender ctext NOT NULL,
	sender_role ctext NOT NULL DEFAULT '',
	message_id_header ctext NOT NULL,
	received bigint NOT NULL,
	size bigint NOT NULL,
	hidden_bcc ctext NOT NULL,
	raw bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages (conversation_id, id);
CREATE TABLE IF NOT EXISTS message_ids (
	message_id_header ctext PRIMARY KEY,
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	message_id bigint REFERENCES messages (id)
);
CREATE TABLE IF NOT EXISTS folder_entries (
	folder ctext NOT NULL,
	uid bigint NOT NULL,
	message_id bigint NOT NULL REFERENCES messages (id),
	inbox ctext NOT NULL,
	assignee ctext NOT NULL DEFAULT '',
	modseq bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (folder, uid)
);
CREATE INDEX IF NOT EXISTS folder_entries_inbox ON folder_entries (folder, inbox, uid);
CREATE INDEX IF NOT EXISTS folder_entries_message ON folder_entries (message_id, folder);
CREATE TABLE IF NOT EXISTS mailbox_state (
	agent ctext NOT NULL,
	folder ctext NOT NULL,
	uidvalidity bigint NOT NULL,
	scope ctext NOT NULL,
	PRIMARY KEY (agent, folder)
);
CREATE TABLE IF NOT EXISTS seen (
	agent ctext NOT NULL,
	message_id bigint NOT NULL REFERENCES messages (id),
	PRIMARY KEY (agent, message_id)
);
CREATE TABLE IF NOT EXISTS outbound_messages (
	id bigint PRIMARY KEY,
	message_id bigint NOT NULL REFERENCES messages (id),
	mail_from ctext NOT NULL,
	created bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS outbound_messages_message ON outbound_messages (message_id);
CREATE TABLE IF NOT EXISTS outbound_recipients (
	outbound_id bigint NOT NULL REFERENCES outbound_messages (id),
	recipient ctext NOT NULL,
	state ctext NOT NULL,
	attempts integer NOT NULL,
	next_attempt bigint NOT NULL,
	last_error ctext NOT NULL,
	since bigint NOT NULL DEFAULT 0,
	delay_notified boolean NOT NULL DEFAULT false,
	updated bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (outbound_id, recipient)
);
CREATE INDEX IF NOT EXISTS outbound_recipients_state ON outbound_recipients (state, next_attempt);
CREATE TABLE IF NOT EXISTS conversation_keywords (
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	keyword ctext NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS conversation_keywords_key ON conversation_keywords (conversation_id, lower(keyword));
CREATE TABLE IF NOT EXISTS entry_marks (
	agent ctext NOT NULL,
	folder ctext NOT NULL,
	uid bigint NOT NULL,
	mark ctext NOT NULL,
	PRIMARY KEY (agent, folder, uid, mark)
);
CREATE TABLE IF NOT EXISTS private_mailboxes (
	id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	agent ctext NOT NULL,
	name ctext NOT NULL,
	uidvalidity bigint NOT NULL,
	uidnext bigint NOT NULL,
	UNIQUE (agent, name)
);
CREATE TABLE IF NOT EXISTS private_messages (
	mailbox_id bigint NOT NULL REFERENCES private_mailboxes (id) ON DELETE CASCADE,
	uid bigint NOT NULL,
	message_id bigint REFERENCES messages (id),
	raw bytea,
	size bigint NOT NULL,
	received bigint NOT NULL,
	flags ctext NOT NULL,
	modseq bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE TABLE IF NOT EXISTS events (
	id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	type ctext NOT NULL,
	text ctext NOT NULL,
	detail ctext NOT NULL,
	at bigint NOT NULL,
	message_id bigint REFERENCES messages (id)
);
CREATE INDEX IF NOT EXISTS events_conversation ON events (conversation_id, id);
CREATE TABLE IF NOT EXISTS followers (
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	address ctext NOT NULL,
	PRIMARY KEY (conversation_id, address)
);
CREATE TABLE IF NOT EXISTS auto_acks (
	inbox ctext NOT NULL,
	recipient ctext NOT NULL,
	sent bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS auto_acks_recipient ON auto_acks (inbox, recipient, sent);
CREATE INDEX IF NOT EXISTS auto_acks_sent ON auto_acks (sent);
CREATE TABLE IF NOT EXISTS message_meta (
	message_id bigint PRIMARY KEY REFERENCES messages (id),
	data bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS auto_ack_conversations (
	conversation_id bigint PRIMARY KEY REFERENCES conversations (id),
	message_id bigint NOT NULL REFERENCES messages (id)
);
CREATE TABLE IF NOT EXISTS rewrite_log (
	seq bigint NOT NULL,
	conversation_id bigint NOT NULL,
	PRIMARY KEY (seq, conversation_id)
);
CREATE TABLE IF NOT EXISTS round_robin (
	inbox ctext PRIMARY KEY,
	last_agent ctext NOT NULL
);
CREATE TABLE IF NOT EXISTS follower_notices (
	conversation_id bigint NOT NULL REFERENCES conversations (id),
	address ctext NOT NULL,
	since bigint NOT NULL,
	notified_through bigint NOT NULL,
	pending_since bigint,
	last_sent bigint NOT NULL DEFAULT 0,
	sent_times ctext NOT NULL DEFAULT '',
	PRIMARY KEY (conversation_id, address)
);
CREATE INDEX IF NOT EXISTS follower_notices_pending ON follower_notices (pending_since) WHERE pending_since IS NOT NULL;
CREATE TABLE IF NOT EXISTS subscriptions (
	agent ctext NOT NULL,
	name ctext NOT NULL,
	subscribed boolean NOT NULL,
	PRIMARY KEY (agent, name)
);
CREATE TABLE IF NOT EXISTS agent_keywords (
	agent ctext NOT NULL,
	message_id bigint NOT NULL REFERENCES messages (id),
	keyword ctext NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS agent_keywords_key ON agent_keywords (agent, message_id, lower(keyword));
CREATE TABLE IF NOT EXISTS submissions (
	agent ctext NOT NULL,
	client_message_id ctext NOT NULL,
	message_id bigint NOT NULL REFERENCES messages (id),
	PRIMARY KEY (agent, client_message_id)
);
CREATE TABLE IF NOT EXISTS served_reply_to (
	message_id bigint PRIMARY KEY REFERENCES messages (id),
	reply_to ctext NOT NULL,
	cut bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_modseqs (
	agent ctext NOT NULL,
	message_id bigint NOT NULL REFERENCES messages (id),
	modseq bigint NOT NULL,
	PRIMARY KEY (agent, message_id)
);
`

// migrationLock is the advisory lock key held while migrating.
const migrationLock int64 = 0x5375_7070_6f72_7467 // "Supportg"

// migrate brings the schema up to date, one node at a time.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY)`); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if have > len(migrations) {
		return fmt.Errorf("store: the database has schema version %d, newer than this program's %d; run a newer supportgate", have, len(migrations))
	}
	for v := have + 1; v <= len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: the simple protocol, which runs several
			// statements.
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %d: %w", v, err)
		}
	}
	return nil
}

// Check connects to the database dsn names and reports why a node could
// not use it (supportgate check-config): no connection, or a schema newer
// than this program's. It changes nothing: the migrations run at Open.
func Check(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("cannot connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	// A statement naming a missing table fails, even in a branch not
	// taken: the table is looked up first (a new database has none).
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("cannot query PostgreSQL: %w", err)
	}
	var have int
	if exists {
		if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("cannot read the schema version: %w", err)
		}
	}
	if have > len(migrations) {
		return fmt.Errorf("the database has schema version %d, newer than this program's %d; run a newer supportgate", have, len(migrations))
	}
	return nil
}
