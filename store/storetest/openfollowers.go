package storetest

import (
	"testing"

	"github.com/supportgate/supportgate/store"
)

// openFollowerCases: DESIGN.md §7, a follower added as a conversation
// opens is told of the opening message.
func openFollowerCases() []testCase {
	return []testCase{
		{"FollowersOfANewConversationAreToldOfIt", testOpenFollowers},
	}
}

func testOpenFollowers(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := newInbound(inboxA, "of1@example.com", 1)
	in.NewFollowers = []string{"manager@support.example.com"}
	opened := mustInbound(t, s, in)
	auto := newInbound(inboxA, "of2@example.com", 2)
	auto.NewFollowers, auto.Automatic = []string{"manager@support.example.com"}, true
	mustInbound(t, s, auto)
	// A follower added later by a message into it starts after it.
	later := into(opened.Conversation, inboxA, "of3@example.com", 3)
	later.NewFollowers = []string{"other@support.example.com"}
	mustInbound(t, s, later)

	notices, err := s.PendingNotices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, n := range notices {
		if n.Follower == "other@support.example.com" && n.Conversation == opened.Conversation {
			t.Errorf("a follower added by a later message is told of it: %+v", n)
		}
		if n.Follower != "manager@support.example.com" {
			continue
		}
		if n.Conversation != opened.Conversation {
			t.Errorf("the follower of an automatic message's conversation is told of it: %+v", n)
			continue
		}
		found = true
		if n.NotifiedThrough >= opened.Message || n.Since >= opened.Message {
			t.Errorf("notice %+v does not include the opening message %d", n, opened.Message)
		}
		ups, _, err := s.NoticeUpdates(ctx, n.Conversation, n.Follower, n.NotifiedThrough)
		if err != nil || len(ups) == 0 || ups[0].ID != opened.Message {
			t.Errorf("NoticeUpdates = %+v, %v; want the opening message first", ups, err)
		}
	}
	if !found {
		t.Errorf("the follower added as the conversation opened has nothing pending: %+v", notices)
	}
}
