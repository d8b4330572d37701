package policy

import (
	"reflect"
	"testing"

	"github.com/supportgate/supportgate/config"
)

const rulesTOML = `
[server]
hostname = "mail.example.test"
data_dir = "./unused"

[[inbox]]
address = "support@example.test"

[[inbox.rule]]
name = "Billing"
subject = 'invoice|refund'
tags = ["billing"]
assign = "bob@example.test"

[[inbox.rule]]
name = "VIP"
sender = '@bigcorp\.example$'
tags = ["vip", "billing"]
followers = ["ceo@example.test"]

[[inbox.rule]]
name = "Outage"
subject = 'down'
body = 'since (this|yesterday) morning'
tags = ["outage"]
assign = "alice@example.test"
followers = ["ceo@example.test", "oncall@example.test"]

[[agent]]
email = "alice@example.test"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
roles = { "support@example.test" = "admin" }

[[agent]]
email = "bob@example.test"
password_hash = "$2a$10$6v69aQ67.kjlIBsnMzVu.u8m.bGCfyfAETgCQ9s951d0ww4vQQVEe"
roles = { "support@example.test" = "reply" }
`

func rulesConfig(t testing.TB) []config.Rule {
	t.Helper()
	cfg, err := config.Parse("rules_test.toml", []byte(rulesTOML))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return cfg.Inboxes[0].Rules
}

func TestApplyRules(t *testing.T) {
	rules := rulesConfig(t)
	for _, tc := range []struct {
		name string
		in   RuleInput
		want RuleOutcome
	}{
		{"nothing matches", RuleInput{Sender: "kim@customer.example", Subject: "Hello", Body: "Hi"}, RuleOutcome{}},
		{"subject, without regard to case", RuleInput{Sender: "kim@customer.example", Subject: "Your INVOICE 42"},
			RuleOutcome{Matched: []string{"Billing"}, Tags: []string{"billing"}, Assign: "bob@example.test"}},
		{"sender", RuleInput{Sender: "cfo@bigcorp.example", Subject: "Hello"},
			RuleOutcome{Matched: []string{"VIP"}, Tags: []string{"vip", "billing"}, Followers: []string{"ceo@example.test"}}},
		{"a sender pattern is anchored where it says", RuleInput{Sender: "cfo@bigcorp.example.evil.test"}, RuleOutcome{}},
		{"every matching rule adds; the first assignee wins", RuleInput{Sender: "cfo@bigcorp.example", Subject: "Refund: site down",
			Body: "It is down since this morning."},
			RuleOutcome{Matched: []string{"Billing", "VIP", "Outage"}, Tags: []string{"billing", "vip", "outage"},
				Assign: "bob@example.test", Followers: []string{"ceo@example.test", "oncall@example.test"}}},
		{"all of a rule's patterns must match", RuleInput{Sender: "kim@customer.example", Subject: "Site down", Body: "since last week"}, RuleOutcome{}},
		{"body and subject", RuleInput{Sender: "kim@customer.example", Subject: "Site down", Body: "Down\r\nsince Yesterday Morning."},
			RuleOutcome{Matched: []string{"Outage"}, Tags: []string{"outage"}, Assign: "alice@example.test",
				Followers: []string{"ceo@example.test", "oncall@example.test"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ApplyRules(rules, tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ApplyRules(%+v)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
	if got := ApplyRules(nil, RuleInput{Subject: "invoice"}); !reflect.DeepEqual(got, RuleOutcome{}) {
		t.Errorf("no rules: %+v", got)
	}
}

// FuzzApplyRules: any mail leaves the outcome within what the rules can
// give, and never panics.
func FuzzApplyRules(f *testing.F) {
	f.Add("cfo@bigcorp.example", "Refund: site down", "down since this morning")
	f.Add("", "", "")
	f.Add("x@y", "\xff\xfe invoice", "since\x00yesterday morning")
	rules := rulesConfig(f)
	f.Fuzz(func(t *testing.T, sender, subject, body string) {
		out := ApplyRules(rules, RuleInput{Sender: sender, Subject: subject, Body: body})
		if len(out.Matched) > len(rules) || len(out.Tags) > 3 || len(out.Followers) > 2 {
			t.Fatalf("outcome beyond the rules: %+v", out)
		}
		if out.Assign != "" && out.Assign != "bob@example.test" && out.Assign != "alice@example.test" {
			t.Fatalf("assignee %q is no rule's", out.Assign)
		}
		if (len(out.Matched) == 0) != (len(out.Tags) == 0) {
			t.Fatalf("tags without a match, or a match without tags: %+v", out)
		}
	})
}
