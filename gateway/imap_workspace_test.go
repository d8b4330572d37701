package gateway

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store"
)

// workspace is a test server with one customer conversation and sessions.
type workspace struct {
	*testServer
	t *testing.T
}

func newWorkspace(t *testing.T, mutate func(*config.Config)) *workspace {
	return &workspace{newTestServer(t, nil, mutate), t}
}

func (w *workspace) customer(id, subject string) {
	w.t.Helper()
	if err := smtpSend(w.mx, nil, "gina@customer.example", []string{"support@example.test"}, customerMail(id, subject)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *workspace) login(user string, h *imapclient.UnilateralDataHandler) *imapclient.Client {
	pass := map[string]string{"alice@example.test": "demo-alice", "bob@example.test": "demo-bob", "carol@example.test": "demo-carol"}[user]
	return imapLogin(w.t, w.imap, user, pass, &imapclient.Options{UnilateralDataHandler: h})
}

func selectN(t *testing.T, c *imapclient.Client, name string) uint32 {
	t.Helper()
	d, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", name, err)
	}
	return d.NumMessages
}

func count(t *testing.T, c *imapclient.Client, name string) uint32 {
	t.Helper()
	st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatalf("STATUS %s: %v", name, err)
	}
	return *st.NumMessages
}

func flagsOf(t *testing.T, c *imapclient.Client, seq uint32) []imap.Flag {
	t.Helper()
	msgs, err := c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH FLAGS %d: %v (%d)", seq, err, len(msgs))
	}
	return msgs[0].Flags
}

func wantCode(t *testing.T, err error, code imap.ResponseCode) {
	t.Helper()
	var e *imap.Error
	if !errors.As(err, &e) || e.Code != code || e.Text == "" {
		t.Errorf("got %v, want NO [%s] with a sentence", err, code)
	}
}

// TestIMAPFolderList: the folders of DESIGN.md §6 with their RFC 6154
// attributes, Inboxes/ only for agents who see several inboxes, and the
// capabilities we implement.
func TestIMAPFolderList(t *testing.T) {
	w := newWorkspace(t, func(c *config.Config) {
		c.Inboxes = append(c.Inboxes, config.Inbox{Address: "billing@example.test", Name: "Billing", MaxParticipants: 10})
		c.Agents[0].Roles["billing@example.test"] = config.RoleAdmin
	})
	alice := w.login("alice@example.test", nil)
	list, err := alice.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	var names []string
	for _, l := range list {
		got[l.Mailbox] = l.Attrs
		names = append(names, l.Mailbox)
		if l.Status == nil && l.Mailbox != "Inboxes" {
			t.Errorf("LIST RETURN (STATUS) gave no status for %s", l.Mailbox)
		}
	}
	want := []string{"INBOX", "Mine", "Unassigned", "Closed", "Spam", "Inboxes", "Inboxes/support@example.test",
		"Inboxes/billing@example.test", "Drafts", "Sent", "Trash"}
	for _, n := range want {
		if _, ok := got[n]; !ok {
			t.Errorf("LIST lacks %s (has %v)", n, names)
		}
	}
	for name, attr := range map[string]imap.MailboxAttr{"Spam": imap.MailboxAttrJunk, "Sent": imap.MailboxAttrSent,
		"Drafts": imap.MailboxAttrDrafts, "Trash": imap.MailboxAttrTrash, "Inboxes": imap.MailboxAttrNoSelect} {
		if !slices.Contains(got[name], attr) {
			t.Errorf("%s has %v, want %s", name, got[name], attr)
		}
	}
	if !slices.Contains(got["Inboxes"], imap.MailboxAttrHasChildren) || !slices.Contains(got["INBOX"], imap.MailboxAttrHasNoChildren) {
		t.Errorf("CHILDREN attributes: Inboxes %v, INBOX %v", got["Inboxes"], got["INBOX"])
	}
	special, err := alice.List("", "*", &imap.ListOptions{SelectSpecialUse: true}).Collect()
	if err != nil || len(special) != 4 {
		t.Errorf("LIST (SPECIAL-USE): %d folders, %v", len(special), err)
	}
	bob := w.login("bob@example.test", nil)
	if l, _ := bob.List("", "Inboxes*", nil).Collect(); len(l) != 0 {
		t.Errorf("bob sees one inbox but has %d Inboxes folders", len(l))
	}
	caps, err := alice.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapIdle, imap.CapMove, imap.CapUIDPlus, imap.CapSpecialUse,
		imap.CapLiteralPlus, imap.CapNamespace, imap.CapESearch, imap.CapUnselect, imap.CapEnable, imap.CapStatusSize,
		imap.CapChildren, imap.CapListStatus, imap.CapAppendLimit} {
		if !caps.Has(c) {
			t.Errorf("capability %s missing", c)
		}
	}
	for _, c := range []imap.Cap{imap.CapCreateSpecialUse, imap.CapUnauthenticate, imap.CapBinary} {
		if caps.Has(c) {
			t.Errorf("capability %s advertised but not implemented", c)
		}
	}
	ns, err := alice.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("NAMESPACE: %+v %v", ns, err)
	}
}

// TestIMAPMovesAreActions: moves act on the whole conversation and every
// other session sees it (EXPUNGE/EXISTS), under IDLE within a second.
func TestIMAPMovesAreActions(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("a1@customer.example", "First")
	conv := int64(1)
	// A second message in the same conversation: bob's reply.
	reply := "From: bob@example.test\r\nTo: gina@customer.example\r\nSubject: Re: First\r\nIn-Reply-To: <a1@customer.example>\r\n\r\nOK\r\n"
	if err := smtpSend(w.submission, sasl.NewPlainClient("", "bob@example.test", "demo-bob"), "bob@example.test",
		[]string{"gina@customer.example"}, reply); err != nil {
		t.Fatal(err)
	}
	expunged := make(chan uint32, 10)
	bob := w.login("bob@example.test", &imapclient.UnilateralDataHandler{Expunge: func(seq uint32) { expunged <- seq }})
	if n := selectN(t, bob, "INBOX"); n != 2 {
		t.Fatalf("bob's INBOX has %d, want 2", n)
	}
	if n := count(t, bob, "Sent"); n != 1 {
		t.Errorf("bob's Sent has %d, want his reply", n)
	}
	idle, err := bob.Idle()
	if err != nil {
		t.Fatal(err)
	}
	alice := w.login("alice@example.test", nil)
	selectN(t, alice, "INBOX")
	start := time.Now()
	if _, err := alice.Move(imap.SeqSetNum(1), "Closed").Wait(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-expunged:
		case <-time.After(time.Second):
			t.Fatalf("bob's idle session got no EXPUNGE within a second of the close (%v)", time.Since(start))
		}
	}
	idle.Close()
	idle.Wait()
	if c, _ := w.store.Conversation(context.Background(), conv); c.Status != store.StatusClosed {
		t.Errorf("conversation %s after MOVE to Closed", c.Status)
	}
	if evs, _ := w.store.Events(context.Background(), conv); len(evs) == 0 || evs[len(evs)-1].Type != "folder-action" ||
		!strings.Contains(evs[len(evs)-1].Text, "closed it") {
		t.Errorf("the move to Closed left no event: %+v", evs)
	}
	if n := count(t, bob, "Closed"); n != 2 {
		t.Errorf("Closed has %d, want the whole conversation (2)", n)
	}
	// A customer reply reopens it (DESIGN.md §4).
	msg := "From: Gina <gina@customer.example>\r\nTo: support@example.test\r\nSubject: Re: First\r\nIn-Reply-To: <a1@customer.example>\r\nMessage-ID: <a3@customer.example>\r\n\r\nstill broken\r\n"
	if err := smtpSend(w.mx, nil, "gina@customer.example", []string{"support@example.test"}, msg); err != nil {
		t.Fatal(err)
	}
	if n := count(t, bob, "Closed"); n != 0 {
		t.Errorf("Closed still has %d after the customer wrote again", n)
	}
	// Mine assigns, Unassigned unassigns.
	selectN(t, alice, "INBOX")
	if _, err := alice.Move(imap.SeqSetNum(1), "Mine").Wait(); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.store.Conversation(context.Background(), conv); c.Assignee != "alice@example.test" {
		t.Errorf("assignee %q after MOVE to Mine", c.Assignee)
	}
	if n := count(t, alice, "Mine"); n != 3 || count(t, bob, "Mine") != 0 || count(t, alice, "Unassigned") != 0 {
		t.Errorf("alice's Mine has %d, want 3; bob's Mine and Unassigned must be empty", n)
	}
	if n := selectN(t, alice, "INBOX"); n != 3 {
		t.Errorf("INBOX has %d after assigning; it shows every open conversation", n)
	}
	selectN(t, alice, "Mine")
	if _, err := alice.Copy(imap.SeqSetNum(1), "Unassigned").Wait(); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.store.Conversation(context.Background(), conv); c.Assignee != "" {
		t.Errorf("assignee %q after COPY to Unassigned", c.Assignee)
	}
	// A junk filter's marks are the agent's own (DESIGN.md §6); spam is a
	// move to Spam, and a move back to INBOX opens it again.
	selectN(t, alice, "INBOX")
	if _, err := alice.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"Junk", "$Junk"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.store.Conversation(context.Background(), conv); c.Status != store.StatusOpen || len(c.Tags) != 0 {
		t.Errorf("status %s, tags %v after a junk mark: a client's junk filter is no action", c.Status, c.Tags)
	}
	if fl := flagsOf(t, alice, 1); !slices.Contains(fl, "Junk") || !slices.Contains(fl, "$Junk") {
		t.Errorf("alice's own junk marks are not kept: %v", fl)
	}
	selectN(t, bob, "INBOX")
	if fl := flagsOf(t, bob, 1); slices.Contains(fl, "Junk") || slices.Contains(fl, "$Junk") {
		t.Errorf("alice's junk marks reached bob: %v", fl)
	}
	if _, err := alice.Move(imap.SeqSetNum(1), "Spam").Wait(); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.store.Conversation(context.Background(), conv); c.Status != store.StatusSpam {
		t.Errorf("status %s after MOVE to Spam", c.Status)
	}
	selectN(t, alice, "Spam")
	if _, err := alice.Move(imap.SeqSetNum(1), "INBOX").Wait(); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.store.Conversation(context.Background(), conv); c.Status != store.StatusOpen {
		t.Errorf("status %s after MOVE from Spam to INBOX", c.Status)
	}
	// Trash closes and files a private copy; nothing is destroyed.
	selectN(t, alice, "INBOX")
	if _, err := alice.Move(imap.SeqSetNum(1), "Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.store.Conversation(context.Background(), conv); c.Status != store.StatusClosed {
		t.Errorf("status %s after MOVE to Trash", c.Status)
	}
	if n := count(t, alice, "Trash"); n != 1 {
		t.Errorf("Trash has %d, want the private copy", n)
	}
}

// TestIMAPFlagsAndRoles: keywords and \Flagged are shared per conversation;
// \Seen per agent; a view agent may only mark read.
func TestIMAPFlagsAndRoles(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("f1@customer.example", "Flags")
	alice, bob, carol := w.login("alice@example.test", nil), w.login("bob@example.test", nil), w.login("carol@example.test", nil)
	for _, c := range []*imapclient.Client{alice, bob, carol} {
		selectN(t, c, "INBOX")
	}
	if _, err := alice.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"billing", imap.FlagFlagged, imap.FlagSeen}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	fl := flagsOf(t, bob, 1)
	if !slices.Contains(fl, "billing") || !slices.Contains(fl, imap.FlagFlagged) || slices.Contains(fl, imap.FlagSeen) {
		t.Errorf("bob sees %v: want alice's tag and \\Flagged, not her \\Seen", fl)
	}
	c, _ := w.store.Conversation(context.Background(), 1)
	if !slices.Equal(c.Tags, []string{"billing"}) || !c.Flagged {
		t.Errorf("conversation tags %v flagged %v", c.Tags, c.Flagged)
	}
	// carol (view): NOPERM for tags, moves and \Deleted; \Seen is fine.
	_, err := carol.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"urgent"}}, nil).Collect()
	wantCode(t, err, imap.ResponseCodeNoPerm)
	_, err = carol.Move(imap.SeqSetNum(1), "Closed").Wait()
	wantCode(t, err, imap.ResponseCodeNoPerm)
	wantCode(t, carol.Create("Mine-own", nil).Wait(), imap.ResponseCodeNoPerm)
	if _, err := carol.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err != nil {
		t.Errorf("carol cannot mark read: %v", err)
	}
	if c, _ := w.store.Conversation(context.Background(), 1); c.Status != store.StatusOpen || len(c.Tags) != 1 {
		t.Errorf("carol changed the conversation: %+v", c)
	}
	// Removing the tag is shared too.
	if _, err := bob.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{"billing"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if fl := flagsOf(t, alice, 1); slices.Contains(fl, "billing") {
		t.Errorf("alice still sees the removed tag: %v", fl)
	}
	// EXPUNGE in INBOX closes, never destroys.
	if _, err := bob.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if fl := flagsOf(t, alice, 1); slices.Contains(fl, imap.FlagDeleted) {
		t.Errorf("bob's \\Deleted leaked to alice: %v", fl)
	}
	if _, err := bob.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	if c, _ := w.store.Conversation(context.Background(), 1); c.Status != store.StatusClosed {
		t.Errorf("EXPUNGE in INBOX left the conversation %s", c.Status)
	}
	evs, _ := w.store.Events(context.Background(), 1)
	if len(evs) == 0 || evs[len(evs)-1].Type != "folder-action" || evs[len(evs)-1].Text != "bob@example.test expunged it from INBOX: closed" {
		t.Errorf("EXPUNGE in INBOX left no event: %+v", evs)
	}
	if n := count(t, alice, "Closed"); n != 1 {
		t.Errorf("Closed has %d", n)
	}
	// EXPUNGE in Closed hides it from bob only.
	selectN(t, bob, "Closed")
	bob.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect()
	if _, err := bob.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	if count(t, bob, "Closed") != 0 || count(t, alice, "Closed") != 1 {
		t.Errorf("EXPUNGE in Closed: bob %d, alice %d; want 0 and 1", count(t, bob, "Closed"), count(t, alice, "Closed"))
	}
	if after, _ := w.store.Events(context.Background(), 1); len(after) != len(evs) {
		t.Errorf("EXPUNGE in Closed, bob's own hide mark, recorded an event: %+v", after[len(evs):])
	}
}

// TestIMAPPrivateFolders: Drafts, Sent, Trash and created folders are
// ordinary mailboxes; COPY from a shared folder changes nothing of the
// conversation; an APPEND to Sent of a submitted message is not stored twice.
func TestIMAPPrivateFolders(t *testing.T) {
	w := newWorkspace(t, nil)
	w.customer("p1@customer.example", "Private")
	alice := w.login("alice@example.test", nil)
	if err := alice.Create("Projects/Acme", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, alice.Create("Closed", nil).Wait(), imap.ResponseCodeCannot)
	wantCode(t, alice.Delete("Sent").Wait(), imap.ResponseCodeCannot)
	selectN(t, alice, "INBOX")
	data, err := alice.Copy(imap.SeqSetNum(1), "Projects/Acme").Wait()
	if err != nil || data.UIDValidity == 0 {
		t.Fatalf("COPY to a private folder: %+v %v", data, err)
	}
	if c, _ := w.store.Conversation(context.Background(), 1); c.Status != store.StatusOpen || c.Assignee != "" {
		t.Errorf("COPY to a private folder changed the conversation: %+v", c)
	}
	if err := alice.Rename("Projects", "Clients", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if n := selectN(t, alice, "Clients/Acme"); n != 1 {
		t.Fatalf("the renamed child holds %d", n)
	}
	msgs, err := alice.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}, RFC822Size: true}).Collect()
	if err != nil || len(msgs) != 1 || !strings.Contains(string(msgs[0].BodySection[0].Bytes), "X-Supportgate-Conversation: 1") ||
		int64(len(msgs[0].BodySection[0].Bytes)) != msgs[0].RFC822Size {
		t.Fatalf("the private copy is not the served message: %v", err)
	}
	draft := "From: alice@example.test\r\nSubject: draft\r\n\r\nunfinished\r\n"
	for range 2 {
		if app := appendMsg(t, alice, "Drafts", draft); app.UID == 0 || app.UIDValidity == 0 {
			t.Errorf("APPEND gave no APPENDUID: %+v", app)
		}
	}
	selectN(t, alice, "Drafts")
	if _, err := alice.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, alice, "Drafts"); n != 1 {
		t.Errorf("Drafts has %d after EXPUNGE, want 1", n)
	}
	if err := alice.Delete("Clients").Wait(); err == nil {
		t.Error("DELETE of a folder with children succeeded")
	}
	if err := alice.Delete("Clients/Acme").Wait(); err != nil {
		t.Error(err)
	}

	// An APPEND to Sent of what was just submitted is not stored twice.
	sent := "From: alice@example.test\r\nTo: gina@customer.example\r\nSubject: Re: Private\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n" +
		"Message-ID: <client-1@alice.example>\r\nIn-Reply-To: <p1@customer.example>\r\n\r\nDone.\r\n"
	if err := smtpSend(w.submission, sasl.NewPlainClient("", "alice@example.test", "demo-alice"), "alice@example.test",
		[]string{"gina@customer.example"}, sent); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, alice, "Sent", sent)
	if n := count(t, alice, "Sent"); n != 1 {
		t.Errorf("Sent has %d after submitting and appending the same message, want 1", n)
	}
	other := strings.Replace(sent, "Done.", "Something else.", 1)
	appendMsg(t, alice, "Sent", other)
	if n := count(t, alice, "Sent"); n != 2 {
		t.Errorf("Sent has %d after appending a different message, want 2", n)
	}
	cmd := alice.Append("INBOX", 3, nil)
	cmd.Write([]byte("x\r\n"))
	cmd.Close()
	_, err = cmd.Wait()
	wantCode(t, err, imap.ResponseCodeCannot)
}

func appendMsg(t *testing.T, c *imapclient.Client, mailbox, msg string) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(msg)), nil)
	cmd.Write([]byte(msg))
	cmd.Close()
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND %s: %v", mailbox, err)
	}
	return data
}
