package threading

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/supportgate/supportgate/domain"
)

// benchIndex holds 10,000 conversations, each with one indexed Message-ID,
// so that Decide's cost is the rules', not a fake's.
func benchIndex() *richIndex {
	x := &richIndex{ids: map[string]int64{}, convs: map[int64]domain.Conversation{}, continuity: map[string]int64{}}
	for i := int64(1); i <= 10_000; i++ {
		x.ids[fmt.Sprintf("m%d@customer.example", i)] = i
		x.convs[i] = domain.Conversation{ID: i, Inbox: "support@example.test", Owner: fmt.Sprintf("c%d@customer.example", i), Status: domain.StatusOpen}
	}
	return x
}

// BenchmarkDecide measures the threading decision of the MX for the three
// common cases: a reply by its References, a reply by its token, a new mail.
func BenchmarkDecide(b *testing.B) {
	k, idx, ctx := testKeys(), benchIndex(), context.Background()
	now := time.Unix(1_700_000_000, 0)
	cases := map[string]Input{
		"references": {
			Recipients: []string{"support@example.test"},
			InReplyTo:  []string{"m4242@customer.example"},
			References: []string{"root@customer.example", "m4241@customer.example", "m4242@customer.example"},
			Inbox:      "support@example.test", Sender: "c4242@customer.example", Subject: "Re: printer", Now: now,
		},
		"token": {
			Recipients: []string{"support+" + k.ReplyToken(777) + "@example.test"},
			Inbox:      "support@example.test", Sender: "c777@customer.example", Subject: "Re: [#777] printer", Now: now,
		},
		"new": {
			Recipients: []string{"support@example.test"},
			Inbox:      "support@example.test", Sender: "someone@else.example", Subject: "=?UTF-8?Q?Caf=C3=A9?= machine broken",
			Now: now, ContinuityWindow: 72 * time.Hour,
		},
	}
	for name, in := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decide(ctx, k, idx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
