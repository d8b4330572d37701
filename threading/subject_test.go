package threading

import "testing"

func TestNormalizeSubject(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Printer on fire", "printer on fire"},
		{"Re: Printer on fire", "printer on fire"},
		{"RE: RE: Re: Printer  on\tfire", "printer on fire"},
		{"AW: WG: Fwd: Printer on fire", "printer on fire"},
		{"Sv: SV: Printer on fire", "printer on fire"},
		{"Antw: Tr: Fw: FW: Printer on fire", "printer on fire"},
		{"Re[2]: Printer on fire", "printer on fire"},
		{"Re(3): Re^2: Printer on fire", "printer on fire"},
		{"[users-list] Re: [users-list] Printer on fire", "printer on fire"},
		{"Re: Printer on fire [#123]", "printer on fire"},
		{"[#123] Re: Printer on fire", "printer on fire"},
		{"=?UTF-8?Q?Re=3A_Drucker_br=C3=A4nnt?=", "drucker brännt"},
		{"=?ISO-8859-1?Q?AW:_Drucker_br=E4nnt?=", "drucker brännt"},
		{"Re：Printer", "printer"},                          // full-width colon
		{"Regarding the printer", "regarding the printer"}, // "Re" without a colon is a word
		{"Return policy", "return policy"},
		{"[only a tag]", "[only a tag]"},
		{"", ""},
		{"Re:", ""},
	} {
		if got := NormalizeSubject(tc.in); got != tc.want {
			t.Errorf("NormalizeSubject(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSubjectTag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"Re: Printer [#42]", 42},
		{"[#7] first [#8]", 7},
		{"=?UTF-8?Q?Re=3A_=5B#9=5D_caf=C3=A9?=", 9},
		{"Printer #42", 0},
		{"[#0]", 0},
		{"[#99999999999999999999]", 0},
		{"[# 5]", 0},
	} {
		got, ok := SubjectTag(tc.in)
		if got != tc.want || ok != (tc.want != 0) {
			t.Errorf("SubjectTag(%q) = %d, %v; want %d", tc.in, got, ok, tc.want)
		}
	}
	if Tag(12) != "[#12]" {
		t.Errorf("Tag(12) = %q", Tag(12))
	}
}

type mapHeader map[string]string

func (h mapHeader) Get(k string) string { return h[k] }

func TestIsAutoReply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		h        mapHeader
		mailFrom string
		want     bool
	}{
		{"plain mail", mapHeader{}, "a@x", false},
		{"null sender", mapHeader{}, "", true},
		{"null sender in brackets", mapHeader{}, "<>", true},
		{"Auto-Submitted auto-replied", mapHeader{"Auto-Submitted": "auto-replied"}, "a@x", true},
		{"Auto-Submitted auto-generated with comment", mapHeader{"Auto-Submitted": "Auto-Generated (vacation)"}, "a@x", true},
		{"Auto-Submitted no", mapHeader{"Auto-Submitted": "no"}, "a@x", false},
		{"Auto-Submitted No with params", mapHeader{"Auto-Submitted": " No; x=1"}, "a@x", false},
		{"Precedence bulk", mapHeader{"Precedence": "bulk"}, "a@x", true},
		{"Precedence junk", mapHeader{"Precedence": "Junk"}, "a@x", true},
		{"Precedence list", mapHeader{"Precedence": "list"}, "a@x", true},
		{"Precedence first-class", mapHeader{"Precedence": "first-class"}, "a@x", false},
		{"X-Autoreply", mapHeader{"X-Autoreply": "yes"}, "a@x", true},
		{"X-Autorespond", mapHeader{"X-Autorespond": "1"}, "a@x", true},
		{"X-Auto-Response-Suppress", mapHeader{"X-Auto-Response-Suppress": "All"}, "a@x", true},
		{"Auto-Submitted only separators", mapHeader{"Auto-Submitted": ";"}, "a@x", true},
	} {
		if got := IsAutoReply(tc.h, tc.mailFrom); got != tc.want {
			t.Errorf("%s: IsAutoReply = %v, want %v", tc.name, got, tc.want)
		}
	}
}
