package searchtext

import (
	"strings"
	"testing"
)

// FuzzSubstringTrigrams: a string's trigrams are among those of any text
// that holds it, lower-cased as SEARCH compares (the index's soundness).
func FuzzSubstringTrigrams(f *testing.F) {
	f.Add("Rechnung f\u00fcr M\u00c4RZ", 3, 7)
	f.Add("caf\u00e9 \u65e5\u672c\u8a9e \xff\xfe bad", 2, 9)
	f.Fuzz(func(t *testing.T, hay string, i, j int) {
		lower := strings.ToLower(hay)
		if i < 0 || j < i || j > len(lower) {
			return
		}
		needle := lower[i:j]
		if strings.ToLower(needle) != needle || !strings.Contains(lower, strings.ToLower(needle)) {
			return
		}
		have := map[string]bool{}
		trigrams(Body, lower, func(s string) { have[s] = true })
		trigrams(Body, strings.ToLower(needle), func(s string) {
			if !have[s] {
				t.Fatalf("%q holds %q, but not its trigram %q", lower, needle, s)
			}
		})
	})
}

func TestBuild(t *testing.T) {
	if _, ok := Build([]Key{{Field: From, Value: "ab"}}); ok {
		t.Error("a two-letter value narrowed")
	}
	q, ok := Build([]Key{{Field: From, Value: "AB"}, {Text: true, Value: "Hello"}})
	if !ok || len(q) != 1 || len(q[0]) != 2 || len(q[0][0]) != 3 || q[0][0][0][0] != 'h' || q[0][1][0][0] != 'b' {
		t.Fatalf("Build: %v %v", q, ok)
	}
	long, _ := Build([]Key{{Field: Body, Value: strings.Repeat("abcdefghijklmnopqrstuvwxyz", 2)}})
	if n := len(Spread(long[0][0], MaxQueryTrigrams)); n != MaxQueryTrigrams {
		t.Errorf("Spread kept %d trigrams", n)
	}
	if !Narrows("\u00e4bc") || Narrows("\u00e4b") {
		t.Error("Narrows counts runes")
	}
}

func TestDocTooLarge(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: x\r\n\r\n")
	x := uint32(1)
	for range 100000 { // pseudo-random: almost every trigram new
		x = x*1664525 + 1013904223
		b.WriteRune(rune(0x4e00 + x>>16%20000))
	}
	if _, ok := Doc([]byte(b.String())); ok {
		t.Error("a message of more than MaxTokens trigrams was indexed")
	}
}
