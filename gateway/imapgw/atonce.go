package imapgw

import "golang.org/x/sync/errgroup"

// A command's writes.
//
// One after another, an IMAP command that names messages of many
// conversations waited for a commit per conversation: under imaptest's
// stress on the shared INBOX a STORE took 220 ms on SQLite and 700 ms on
// PostgreSQL against Dovecot's 7 ms (issue 18). Now the conversations'
// desk changes of a STORE, COPY, MOVE or EXPUNGE are one transaction, each
// conversation with its event (desk.KeywordsAll, MoveAll, ExpungeAll), and
// a STORE's writes that do not depend on each other (the agent's \Seen,
// own keywords and marks, and that transaction) go to the store at once:
// SQLite's writer commits them together (group commit, DESIGN.md §13),
// PostgreSQL runs them side by side. A failure of one leaves the others
// done, as it did when they ran in turn.

// writesAtOnce bounds the writes of one command in flight.
const writesAtOnce = 8

// atOnce runs the writes and returns the first error, after all ended.
func atOnce(writes ...func() error) error {
	var g errgroup.Group
	g.SetLimit(writesAtOnce)
	for _, w := range writes {
		g.Go(w)
	}
	return g.Wait()
}
