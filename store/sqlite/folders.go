package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/supportgate/supportgate/store"
)

// folderState reads what decides a conversation's shared folders.
func folderState(ctx context.Context, tx *sql.Tx, conv int64) (status store.Status, inbox, assignee string, err error) {
	err = tx.QueryRowContext(ctx, `SELECT status, inbox, assignee FROM conversations WHERE id = ?`, conv).Scan(&status, &inbox, &assignee)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	return status, inbox, assignee, err
}

// enterFolders gives one new message its entries in the shared folders its
// conversation is in. Every change of a conversation's status or assignee
// re-syncs all its messages (syncFolders), so the folders of the existing
// messages are already right and only the new one needs entries: the cost of
// adding a message does not grow with its conversation (a conversation of a
// thousand replies costs what a new one does). A conversation created with a
// status (Inbound.NewStatus) has it before its first message enters folders.
func enterFolders(ctx context.Context, tx *sql.Tx, conv, msg int64) error {
	status, inbox, assignee, err := folderState(ctx, tx, conv)
	if err != nil {
		return err
	}
	want := store.WantedFolders(status, assignee)
	if len(want) == 0 {
		return nil
	}
	ms, err := nextModSeq(ctx, tx) // sqlite_modseq.go
	if err != nil {
		return err
	}
	for _, f := range want {
		if err := addFolderEntry(ctx, tx, f, msg, inbox, assignee, ms); err != nil {
			return err
		}
	}
	return nil
}

// addFolderEntry gives message msg the next UID of shared folder f, with
// the mod-sequence modSeq (the transaction's, nextModSeq). Only Mine
// entries keep the conversation's assignee: theirs is the only folder whose
// view depends on it.
func addFolderEntry(ctx context.Context, tx *sql.Tx, f store.Folder, msg int64, inbox, assignee string, modSeq int64) error {
	if f != store.FolderMine {
		assignee = ""
	}
	uid, err := nextval(ctx, tx, "uid:"+string(f))
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO folder_entries (folder, uid, message_id, inbox, assignee, modseq) VALUES (?, ?, ?, ?, ?, ?)`,
		f, uid, msg, inbox, assignee, modSeq)
	return err
}
