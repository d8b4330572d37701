package desk_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/desk"
	"github.com/supportgate/supportgate/store"
)

// TestMerge: desk.Merge moves a conversation into another with an event in
// both (DESIGN.md §14); later changes of the merged number change the
// target; merging into itself changes nothing.
func TestMerge(t *testing.T) {
	for _, show := range []bool{false, true} {
		f := newFixture(t, show)
		ctx := context.Background()
		from := f.conversation(t, open)
		into := f.conversation(t, state{status: store.StatusOpen, tags: []string{"vip"}})
		d := desk.New(f.st, func() *config.Config { return f.cfg })
		if err := d.Merge(ctx, f.agent, from, into); err != nil {
			t.Fatal(err)
		}
		c, err := f.st.Conversation(ctx, from)
		if err != nil || c.ID != into {
			t.Fatalf("the merged number reads %+v, %v", c, err)
		}
		if !slices.Equal(c.Tags, []string{"billing", "vip"}) || !slices.Equal(c.Participants, []string{p1, p2}) || !slices.Equal(c.Followers, []string{bob}) {
			t.Errorf("the target after the merge: %+v", c)
		}
		for _, conv := range []int64{from, into} {
			evs, err := f.st.Events(ctx, conv)
			if err != nil || !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Type == "merged" }) {
				t.Errorf("no merge event in %d: %+v, %v", conv, evs, err)
			}
		}
		// An action on the old number acts on the target.
		if err := d.Close(ctx, f.agent, from); err != nil {
			t.Fatal(err)
		}
		if c, _ := f.st.Conversation(ctx, into); c.Status != store.StatusClosed {
			t.Errorf("closing the merged number left the target %s", c.Status)
		}
		if err := d.Merge(ctx, f.agent, from, into); !errors.Is(err, store.ErrMergeSelf) {
			t.Errorf("merging again: %v, want ErrMergeSelf", err)
		}
	}
}
