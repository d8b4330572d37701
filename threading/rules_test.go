package threading

import (
	"context"
	"testing"
	"time"

	"github.com/supportgate/supportgate/domain"
)

// richIndex is a fake store with whole conversations and continuity answers.
type richIndex struct {
	ids        map[string]int64
	convs      map[int64]domain.Conversation
	continuity map[string]int64 // inbox|owner|norm -> conversation
	since      time.Time        // what ContinuityCandidate was asked
}

func (x *richIndex) ConversationByMessageID(_ context.Context, ids []string) (int64, bool, error) {
	for _, id := range ids {
		if c, ok := x.ids[id]; ok {
			return c, true, nil
		}
	}
	return 0, false, nil
}

func (x *richIndex) Conversation(_ context.Context, id int64) (domain.Conversation, error) {
	c, ok := x.convs[id]
	if !ok {
		return domain.Conversation{}, domain.ErrNotFound
	}
	return c, nil
}

func (x *richIndex) ContinuityCandidate(_ context.Context, inbox, owner, norm string, since time.Time) (int64, bool, error) {
	x.since = since
	c, ok := x.continuity[inbox+"|"+owner+"|"+norm]
	return c, ok, nil
}

// TestDecideRules covers each rule of DESIGN.md §4 and its guards; every
// case fails when its rule is removed or loosened.
func TestDecideRules(t *testing.T) {
	k := testKeys()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	conv := func(id int64, inbox, owner string, participants ...string) domain.Conversation {
		return domain.Conversation{ID: id, Inbox: inbox, Owner: owner, Participants: participants, Status: domain.StatusOpen}
	}
	idx := &richIndex{
		ids: map[string]int64{"known@customer.example": 5, "old@customer.example": 6},
		convs: map[int64]domain.Conversation{
			5:  conv(5, "support@example.test", "ann@customer.example"),
			6:  conv(6, "support@example.test", "ann@customer.example"),
			12: conv(12, "support@example.test", "ann@customer.example", "ben@customer.example"),
			30: conv(30, "billing@example.test", "ann@customer.example"),
			40: conv(40, "support@example.test", "ann@customer.example"),
		},
		continuity: map[string]int64{"support@example.test|ann@customer.example|printer on fire": 40},
	}
	const support = "support@example.test"
	tests := []struct {
		name string
		in   Input
		want dec
	}{
		{"token", Input{Recipients: []string{"support+" + k.ReplyToken(12) + "@example.test"}}, dec{12, RuleReplyToken}},
		{"token upper-cased by a relay", Input{Recipients: []string{"SUPPORT+" + k.ReplyToken(12) + "@EXAMPLE.TEST"}}, dec{12, RuleReplyToken}},
		{"token of a missing conversation is ignored", Input{Recipients: []string{"support+" + k.ReplyToken(404) + "@example.test"}}, dec{0, RuleNew}},
		{"token at another inbox's address is ignored", Input{Recipients: []string{"support+" + k.ReplyToken(30) + "@example.test"}}, dec{0, RuleNew}},
		{"forged token falls through to references", Input{Recipients: []string{"support+12-aaaaaaaaaaaaaaaa@example.test"},
			InReplyTo: []string{"known@customer.example"}}, dec{5, RuleReferences}},
		{"token beats references", Input{Recipients: []string{"support+" + k.ReplyToken(12) + "@example.test"},
			InReplyTo: []string{"known@customer.example"}}, dec{12, RuleReplyToken}},
		{"References only (a client that drops In-Reply-To)", Input{References: []string{"unknown@x", "old@customer.example", "other@x"}}, dec{6, RuleReferences}},
		{"newest reference wins", Input{References: []string{"old@customer.example", "known@customer.example"}}, dec{5, RuleReferences}},
		{"signed id threads without the index", Input{InReplyTo: []string{k.MessageID(12, 99, "mx.example.test")}}, dec{12, RuleReferences}},
		{"signed id of a missing conversation falls back to older ids", Input{
			References: []string{"old@customer.example", k.MessageID(404, 1, "mx.example.test")}}, dec{6, RuleReferences}},
		{"unknown references start a new conversation", Input{InReplyTo: []string{"nobody@x"}}, dec{0, RuleNew}},
		{"tag from the owner", Input{Sender: "ann@customer.example", Subject: "Re: help [#12]"}, dec{12, RuleSubjectTag}},
		{"tag from a participant", Input{Sender: "BEN@customer.example", Subject: "Re: help [#12]"}, dec{12, RuleSubjectTag}},
		{"tag from a stranger starts a new conversation", Input{Sender: "mallory@evil.example", Subject: "Re: help [#12]"}, dec{0, RuleNew}},
		{"tag of a missing conversation", Input{Sender: "ann@customer.example", Subject: "[#404]"}, dec{0, RuleNew}},
		{"references beat the tag", Input{Sender: "ann@customer.example", Subject: "[#12]", InReplyTo: []string{"known@customer.example"}}, dec{5, RuleReferences}},
		{"continuity off by default", Input{Inbox: support, Sender: "ann@customer.example", Subject: "Printer on fire", Now: now}, dec{0, RuleNew}},
		{"continuity on", Input{Inbox: support, Sender: "ann@customer.example", Subject: "AW: Re: printer ON fire", Now: now, ContinuityWindow: 72 * time.Hour}, dec{40, RuleContinuity}},
		{"continuity is per owner", Input{Inbox: support, Sender: "ben@customer.example", Subject: "printer on fire", Now: now, ContinuityWindow: time.Hour}, dec{0, RuleNew}},
		{"tag beats continuity", Input{Inbox: support, Sender: "ann@customer.example", Subject: "printer on fire [#12]", Now: now, ContinuityWindow: time.Hour}, dec{12, RuleSubjectTag}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decide(context.Background(), k, idx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if asDec(got) != tt.want {
				t.Errorf("Decide = %+v, want %+v", asDec(got), tt.want)
			}
			if got.Conv.ID != 0 && got.Conv.Owner == "" {
				t.Errorf("the decision does not carry the conversation: %+v", got.Conv)
			}
		})
	}
	Decide(context.Background(), k, idx, Input{Inbox: support, Sender: "ann@customer.example", Subject: "printer on fire", Now: now, ContinuityWindow: 72 * time.Hour})
	if want := now.Add(-72 * time.Hour); !idx.since.Equal(want) {
		t.Errorf("continuity asked since %v, want %v", idx.since, want)
	}
}

func TestAdmit(t *testing.T) {
	open := domain.Conversation{ID: 1, Owner: "ann@x", Participants: []string{"ben@x"}, Status: domain.StatusOpen}
	closed := open
	closed.Status = domain.StatusClosed
	spam := open
	spam.Status = domain.StatusSpam
	full := closed
	full.Participants = []string{"ben@x", "cat@x"}
	followed := closed
	followed.Followers = []string{"cfo@corp.example"}
	join := InboxRules{Strangers: "participant", MaxParticipants: 2}
	hold := InboxRules{Strangers: "hold", MaxParticipants: 2}
	tests := []struct {
		name   string
		conv   domain.Conversation
		sender Sender
		rules  InboxRules
		want   Admission
	}{
		{"new conversation: the sender owns it", domain.Conversation{}, Sender{Address: "new@x"}, join, Admission{Role: domain.SenderOwner}},
		{"owner in an open conversation", open, Sender{Address: "ANN@x"}, join, Admission{Role: domain.SenderOwner}},
		{"owner reopens a closed one", closed, Sender{Address: "ann@x"}, join, Admission{Role: domain.SenderOwner, Reopen: true}},
		{"participant reopens", closed, Sender{Address: "ben@x"}, join, Admission{Role: domain.SenderParticipant, Reopen: true}},
		{"an auto-reply never reopens", closed, Sender{Address: "ann@x", Auto: true}, join, Admission{Role: domain.SenderOwner}},
		{"spam is not reopened", spam, Sender{Address: "ann@x"}, join, Admission{Role: domain.SenderOwner}},
		{"stranger joins when allowed", closed, Sender{Address: "cow@x"}, join, Admission{Role: domain.SenderParticipant, Join: true, Reopen: true}},
		{"stranger held by the inbox", closed, Sender{Address: "cow@x"}, hold, Admission{Role: domain.SenderStranger}},
		{"stranger over the cap", full, Sender{Address: "cow@x"}, join, Admission{Role: domain.SenderStranger}},
		{"automatic stranger never joins", open, Sender{Address: "cow@x", Auto: true}, join, Admission{Role: domain.SenderStranger}},
		{"stranger with no address", open, Sender{}, join, Admission{Role: domain.SenderStranger}},
		{"a follower writes in: kept, never a participant, no reopen", followed, Sender{Address: "CFO@corp.example"}, join, Admission{Role: domain.SenderFollower}},
		{"a DMARC-failing follower is a stranger", followed, Sender{Address: "cfo@corp.example", DMARCFail: true}, join, Admission{Role: domain.SenderStranger}},
		{"agent is neither participant nor stranger", closed, Sender{Address: "alice@example.test", IsAgent: true}, join, Admission{Role: domain.SenderAgent}},
		{"DMARC-failing owner does not reopen", closed, Sender{Address: "ann@x", DMARCFail: true}, join, Admission{Role: domain.SenderOwner}},
		{"DMARC-failing participant does not reopen", closed, Sender{Address: "ben@x", DMARCFail: true}, join, Admission{Role: domain.SenderParticipant}},
		{"DMARC-failing stranger never joins", closed, Sender{Address: "cow@x", DMARCFail: true}, join, Admission{Role: domain.SenderStranger}},
		{"DMARC-failing agent address is a stranger", closed, Sender{Address: "alice@example.test", IsAgent: true, DMARCFail: true}, join, Admission{Role: domain.SenderStranger}},
		{"DMARC-failing sender still owns a new conversation", domain.Conversation{}, Sender{Address: "new@x", DMARCFail: true}, join, Admission{Role: domain.SenderOwner}},
	}
	for _, tt := range tests {
		if got := Admit(tt.conv, tt.sender, tt.rules); got != tt.want {
			t.Errorf("%s: Admit = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// FuzzDecide feeds arbitrary header values to the parsers and the decision
// function: it never panics, and a match names a conversation that exists.
func FuzzDecide(f *testing.F) {
	k := testKeys()
	f.Add("support+"+k.ReplyToken(12)+"@example.test", "<known@customer.example>", "<a@b> <c@d>", "Re: [#12] x", "ann@customer.example")
	f.Add("support@example.test", "", "", "=?UTF-8?Q?AW=3A_=5B#12=5D?=", "ben@customer.example")
	f.Add("x", "<"+k.MessageID(404, 1, "h")+">", "garbage", "Re[2]: Re: [list] ", "")
	f.Fuzz(func(t *testing.T, rcpt, inReplyTo, references, subject, sender string) {
		idx := &richIndex{
			ids:        map[string]int64{"known@customer.example": 5},
			convs:      map[int64]domain.Conversation{5: {ID: 5, Inbox: "support@example.test", Owner: "ann@customer.example"}, 12: {ID: 12, Inbox: "support@example.test", Owner: "ann@customer.example", Participants: []string{"ben@customer.example"}}},
			continuity: map[string]int64{},
		}
		d, err := Decide(context.Background(), k, idx, Input{
			Recipients: []string{rcpt}, InReplyTo: ParseMessageIDs(inReplyTo), References: ParseMessageIDs(references),
			Inbox: "support@example.test", Sender: sender, Subject: subject, Now: time.Unix(0, 0), ContinuityWindow: time.Hour,
		})
		if err != nil {
			t.Fatalf("Decide failed: %v", err)
		}
		if d.Conv.ID != 0 {
			if _, ok := idx.convs[d.Conv.ID]; !ok {
				t.Fatalf("Decide chose a conversation that does not exist: %d", d.Conv.ID)
			}
		}
		NormalizeSubject(subject)
		SubjectTag(subject)
	})
}
