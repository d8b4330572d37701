package policy

import (
	"slices"
	"testing"
)

func TestSideRecipients(t *testing.T) {
	cfg := testConfig(t)
	const (
		vendor = "sales@vendor.example"
		dock   = "dock@warehouse.example"
		token  = "support+42s1-zdnjah3cwgd4czz4@example.test"
	)
	tests := []struct {
		name                        string
		side, to, cc, envelope      []string
		envWant, joinWant, hideWant []string
	}{
		{name: "a new side: To joins, Bcc is hidden, internal addresses get nothing",
			to: []string{vendor}, cc: []string{"support@example.test"}, envelope: []string{vendor, dock, "support@example.test"},
			envWant: []string{vendor, dock}, joinWant: []string{vendor}, hideWant: []string{dock}},
		{name: "Reply on a side message goes to every recipient of the side",
			side: []string{vendor, dock}, to: []string{vendor}, envelope: []string{vendor},
			envWant: []string{vendor, dock}},
		{name: "Reply All with the side's token address: nobody new, the token gets nothing",
			side: []string{vendor}, to: []string{"Sales@Vendor.example"}, cc: []string{token}, envelope: []string{vendor, token},
			envWant: []string{vendor}},
	}
	for _, tt := range tests {
		r := SideRecipients(cfg, tt.side, tt.to, tt.cc, tt.envelope)
		if !slices.Equal(r.Envelope, tt.envWant) || !slices.Equal(r.NewParticipants, tt.joinWant) || !slices.Equal(r.HiddenBCC, tt.hideWant) {
			t.Errorf("%s: envelope %v joining %v hidden %v; want %v %v %v", tt.name, r.Envelope, r.NewParticipants, r.HiddenBCC,
				tt.envWant, tt.joinWant, tt.hideWant)
		}
	}
}
