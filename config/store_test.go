package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestStoreDefaultsAndSet(t *testing.T) {
	c, err := Parse("s.toml", []byte(team))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Store{Engine: StoreSQLite}); c.Store != want {
		t.Errorf("Store = %+v, want %+v", c.Store, want)
	}
	dsn := "postgres://supportgate@db.example.test/supportgate"
	c, err = Parse("s.toml", []byte("[store]\nengine = \"postgres\"\ndsn = \""+dsn+"\"\n"+team))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Store{Engine: StorePostgres, DSN: dsn}); c.Store != want {
		t.Errorf("Store = %+v, want %+v", c.Store, want)
	}
}

func TestStoreErrors(t *testing.T) {
	for _, tc := range []struct{ name, doc, phrase string }{
		{"engine", "[store]\nengine = \"mysql\" #<-\n", `store.engine is "mysql", but it must be "sqlite" or "postgres"`},
		{"no dsn", "[store]\nengine = \"postgres\" #<-\n", `store.engine is "postgres", but there is no store.dsn`},
		{"dsn without postgres", "[store]\ndsn = \"host=db\" #<-\n", `store.dsn is set, but store.engine is "sqlite"`},
		{"unknown", "[store]\npath = \"/x\" #<-\n", `unknown key "store.path"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc + team
			_, err := Parse("s.toml", []byte(doc))
			if err == nil {
				t.Fatal("accepted")
			}
			want := "s.toml:" + strconv.Itoa(markedLine(doc)) + ": "
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.phrase) {
				t.Errorf("error %q, want %q and %q", err, want, tc.phrase)
			}
		})
	}
}
