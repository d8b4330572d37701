package store

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const (
	inboxX = "support@x.example"
	inboxY = "sales@y.example"
	agentA = "a@team.example"
	agentB = "b@team.example"
)

// TestFilterMatches: what wakes an agent's view of a shared folder, of a
// private mailbox, and the queue worker.
func TestFilterMatches(t *testing.T) {
	inboxA := FolderFilter(agentA, FolderInbox, []string{inboxX}) // agent A on INBOX, seeing inbox X
	closedA := FolderFilter(agentA, FolderClosed, []string{inboxX, inboxY})
	projectsA := MailboxFilter(agentA, "Projects/Q3")
	queue := Filter{Queue: true}
	all := Filter{All: true}
	entered := func(inbox string, fs ...Folder) Change { return Change{Conversation: 7, Inbox: inbox, Folders: fs} }

	cases := []struct {
		name   string
		c      Change
		filter Filter
		want   bool
	}{
		{"a new entry in X", entered(inboxX, FolderInbox, FolderUnassigned), inboxA, true},
		{"a new entry in Y", entered(inboxY, FolderInbox, FolderUnassigned), inboxA, false},
		{"inboxes compare case-insensitively", entered("Support@X.example", FolderInbox), inboxA, true},
		{"a flag change in X", Change{Conversation: 7, Inbox: inboxX, Folders: []Folder{FolderInbox, FolderMine}, Flags: true}, inboxA, true},
		{"a flag change in Y", Change{Conversation: 7, Inbox: inboxY, Flags: true}, inboxA, false},
		{"X's conversation closed: it leaves INBOX", entered(inboxX, FolderInbox, FolderUnassigned, FolderClosed), inboxA, true},
		{"an entry of X in Closed only", entered(inboxX, FolderClosed), inboxA, false},
		{"the same, for the Closed view", entered(inboxX, FolderClosed), closedA, true},
		{"a change in X, folders not said", entered(inboxX), inboxA, true},
		{"a change in some inbox", Change{Conversation: 7}, inboxA, true},
		{"its own \\Seen (another session's)", Change{Agent: agentA}, inboxA, true},
		{"its own \\Seen, agent in other case", Change{Agent: "A@Team.example"}, inboxA, true},
		{"agent B's \\Seen", Change{Agent: agentB}, inboxA, false},
		{"its own mark in INBOX", Change{Agent: agentA, Folders: []Folder{FolderInbox}}, inboxA, true},
		{"its own mark in Spam", Change{Agent: agentA, Folders: []Folder{FolderSpam}}, inboxA, false},
		{"its own state in Y", Change{Agent: agentA, Inbox: inboxY}, inboxA, false},
		{"its private mailbox", Change{Agent: agentA, Mailbox: "Sent"}, inboxA, false},
		{"the queue", Change{Queue: true}, inboxA, false},
		{"everything", Change{All: true}, inboxA, true},
		{"nothing said", Change{}, inboxA, false},

		{"private: that mailbox", Change{Agent: agentA, Mailbox: "Projects/Q3"}, projectsA, true},
		{"private: its parent renamed", Change{Agent: agentA, Mailbox: "Projects"}, projectsA, true},
		{"private: a name sharing a prefix", Change{Agent: agentA, Mailbox: "Proj"}, projectsA, false},
		{"private: a mailbox below it", Change{Agent: agentA, Mailbox: "Projects/Q3/old"}, projectsA, false},
		{"private: another agent's", Change{Agent: agentB, Mailbox: "Projects/Q3"}, projectsA, false},
		{"private: its agent's \\Seen", Change{Agent: agentA}, projectsA, false},
		{"private: a shared entry", entered(inboxX), projectsA, false},

		{"queue: recipients queued", Change{Queue: true}, queue, true},
		{"queue: a reply queued in X", Change{Conversation: 7, Inbox: inboxX, Queue: true}, queue, true},
		{"queue: a new entry", entered(inboxX, FolderInbox), queue, false},
		{"queue: a \\Seen", Change{Agent: agentA}, queue, false},
		{"queue: everything", Change{All: true}, queue, true},

		{"all: an entry", entered(inboxY), all, true},
		{"all: a \\Seen", Change{Agent: agentB}, all, true},
	}
	for _, c := range cases {
		if got := c.filter.Matches(c.c); got != c.want {
			t.Errorf("%s: %+v matches %+v = %v, want %v", c.name, c.filter, c.c, got, c.want)
		}
	}
}

func TestCoalesce(t *testing.T) {
	got := Coalesce([]Change{
		{Conversation: 1, Inbox: inboxX, Folders: []Folder{FolderInbox}},
		{Conversation: 1, Inbox: inboxX, Folders: []Folder{FolderMine}, Flags: true, Queue: true},
		{Conversation: 2, Inbox: inboxX, Folders: []Folder{FolderClosed}},
		{Conversation: 2, Inbox: inboxX},
		{Agent: agentA},
		{Agent: agentA},
		{Agent: agentA, Mailbox: "Sent"},
		{Queue: true},
		{},
	})
	want := []Change{
		{Conversation: 1, Inbox: inboxX, Folders: []Folder{FolderInbox, FolderMine}, Flags: true},
		{Conversation: 2, Inbox: inboxX}, // every kind
		{Agent: agentA},
		{Agent: agentA, Mailbox: "Sent"},
		{Queue: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Coalesce =\n%+v\nwant\n%+v", got, want)
	}
	if got := Coalesce([]Change{{Agent: agentA}, {All: true}}); !reflect.DeepEqual(got, []Change{{All: true}}) {
		t.Fatalf("with an All: %+v", got)
	}
}

func TestEncodeChanges(t *testing.T) {
	batch := []Change{
		{Conversation: 42, Inbox: "<support>&co@x.example", Folders: []Folder{FolderInbox, FolderUnassigned}, Flags: true},
		{Agent: agentA, Mailbox: "Sent"},
		{Queue: true},
	}
	b := EncodeChanges(batch)
	want := `[{"conv":42,"inbox":"<support>&co@x.example","folders":["INBOX","Unassigned"],"flags":true},{"agent":"a@team.example","mailbox":"Sent"},{"queue":true}]`
	if string(b) != want {
		t.Fatalf("EncodeChanges =\n%s\nwant\n%s", b, want)
	}
	got, err := DecodeChanges(b)
	if err != nil || !reflect.DeepEqual(got, batch) {
		t.Fatalf("DecodeChanges = %+v, %v; want %+v", got, err, batch)
	}
	if b := EncodeChanges(nil); string(b) != "[]" {
		t.Fatalf("no change: %s", b)
	}
	if _, err := DecodeChanges([]byte("{")); err == nil {
		t.Fatal("a broken payload decoded")
	}
}

// TestEncodeChangesFits: a batch too large for a NOTIFY payload is said
// per inbox, then as "everything", and what it decodes to wakes every
// subscriber the batch woke.
func TestEncodeChangesFits(t *testing.T) {
	var many []Change
	for i := range 2000 {
		many = append(many, Change{Conversation: int64(i + 1), Inbox: fmt.Sprintf("inbox%d@x.example", i%3), Folders: []Folder{FolderInbox}})
	}
	many = append(many, Change{Agent: agentA, Mailbox: "Sent"})
	b := EncodeChanges(many)
	if len(b) > MaxPayload {
		t.Fatalf("%d bytes, more than %d", len(b), MaxPayload)
	}
	got, err := DecodeChanges(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Conversation != 0 || got[0].Inbox != "inbox0@x.example" {
		t.Fatalf("coarsened to %+v, want one change per inbox and the agent's", got)
	}
	filters := []Filter{
		FolderFilter(agentB, FolderInbox, []string{"inbox2@x.example"}),
		MailboxFilter(agentA, "Sent"),
	}
	for _, f := range filters {
		if !matchesAny(f, got) {
			t.Errorf("%+v is not woken by the coarse payload", f)
		}
	}
	if matchesAny(FolderFilter(agentB, FolderClosed, []string{"inbox2@x.example"}), got) {
		t.Error("the coarse payload wakes a folder kind the batch did not change")
	}

	var huge []Change
	for i := range 500 {
		huge = append(huge, Change{Agent: fmt.Sprintf("agent%d@team.example", i), Mailbox: strings.Repeat("m", 20)})
	}
	got, err = DecodeChanges(EncodeChanges(huge))
	if err != nil || !reflect.DeepEqual(got, []Change{{All: true}}) {
		t.Fatalf("too large even per inbox: %+v, %v; want one All", got, err)
	}
}

func matchesAny(f Filter, cs []Change) bool {
	for _, c := range cs {
		if f.Matches(c) {
			return true
		}
	}
	return false
}
