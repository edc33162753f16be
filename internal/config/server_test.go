package config

import (
	"strings"
	"testing"
	"time"
)

func TestServerAndAuditSections(t *testing.T) {
	c, err := Parse([]byte("{}\n"), "defaults.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Server; s.ReadTimeout.Std() != DefaultReadTimeout || s.WriteTimeout.Std() != DefaultWriteTimeout ||
		s.IdleTimeout.Std() != DefaultIdleTimeout || s.MaxUnauthenticated != DefaultMaxUnauthenticated {
		t.Errorf("server defaults = %+v", s)
	}
	if c.Audit.VerifyTail != DefaultVerifyTail {
		t.Errorf("audit.verify_tail default = %d", c.Audit.VerifyTail)
	}
	if d := Default(); d.Server != c.Server || d.Audit != c.Audit {
		t.Errorf("Default() = %+v %+v, want the file defaults", d.Server, d.Audit)
	}

	c, err = Parse([]byte("server: {read_timeout: 5s, write_timeout: 1m, idle_timeout: 2m, max_unauthenticated: 200}\naudit: {verify_tail: 50}\n"), "set.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Server; s.ReadTimeout.Std() != 5*time.Second || s.WriteTimeout.Std() != time.Minute ||
		s.IdleTimeout.Std() != 2*time.Minute || s.MaxUnauthenticated != 200 || c.Audit.VerifyTail != 50 {
		t.Errorf("set = %+v %+v", s, c.Audit)
	}

	for src, want := range map[string]string{
		"server: {read_timeout: 10ms}\n":      "server.read_timeout: 10ms is not between 100ms and 1h",
		"server: {idle_timeout: 2h}\n":        "server.idle_timeout: 2h0m0s is not between",
		"server: {max_unauthenticated: -1}\n": "server.max_unauthenticated: -1 is not between",
		"server: {max_header_bytes: 10}\n":    "field max_header_bytes not found",
		"audit: {verify_tail: -5}\n":          "audit.verify_tail: -5 is not a positive number",
		"audit: {verify_tail: 10, tail: 3}\n": "field tail not found",
		"server: {read_timeout: soon}\n":      "line 1",
	} {
		if _, err := Parse([]byte(src), "bad.yaml", nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", src, err, want)
		}
	}
}
