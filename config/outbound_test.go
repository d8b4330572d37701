package config

import (
	"strings"
	"testing"
)

func TestRelayCredentialsFile(t *testing.T) {
	const base = "[[inbox]]\naddress = \"support@example.test\"\n[outbound]\nmode = \"relay\"\nrelay = \"smtp.example.test:587\"\n"
	c, err := Parse("r.toml", []byte(base+"relay_credentials_file = \"/etc/supportgate/relay\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbound.RelayCredentialsFile != "/etc/supportgate/relay" {
		t.Errorf("RelayCredentialsFile = %q", c.Outbound.RelayCredentialsFile)
	}
	c, err = Parse("r.toml", []byte(base))
	if err != nil || c.Outbound.RelayCredentialsFile != "" {
		t.Errorf("without the key: %q, %v; want \"\" (no AUTH)", c.Outbound.RelayCredentialsFile, err)
	}
	_, err = Parse("r.toml", []byte(base+"relay_credentials_file = \"/etc/x\\ny\"\n"))
	if err == nil || !strings.Contains(err.Error(), "r.toml:6:") || !strings.Contains(err.Error(), "control character") {
		t.Errorf("a control character in relay_credentials_file: %v; want an error at r.toml:6", err)
	}
}
