package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Issue 9 case 11: whatever looks like userinfo is redacted, including
// passwords url.Parse cannot parse and a token used as the user name.
func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://alice:S3CR/ET@example.org/r/x":         "https://REDACTED@example.org/r/x",
		"https://alice:S3C#RET@example.org/r/x":         "https://REDACTED@example.org/r/x",
		"https://alice:S3C%zzRET@example.org/r/x":       "https://REDACTED@example.org/r/x",
		"https://alice:S3C@RET@example.org/r/x":         "https://REDACTED@example.org/r/x",
		"fetch https://ghp_TOKEN@example.org/x: 401":    "fetch https://REDACTED@example.org/x: 401",
		`repo="https://ghp_TOKEN@example.org/x" a=b`:    `repo="https://REDACTED@example.org/x" a=b`,
		"clone alice:S3CRET@example.org:charts.git":     "clone REDACTED@example.org:charts.git",
		"https://example.org/r/x and git@example.org:x": "https://example.org/r/x and git@example.org:x",
		"chart \"a\" 1.0.0 (charts/a): lint: bad":       "chart \"a\" 1.0.0 (charts/a): lint: bad",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactHandlerCoversMessageAttrsErrorsAndGroups(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(redactHandler{slog.NewTextHandler(&buf, nil)}).With("repo", "https://T0KEN@example.org/x")
	log.Info("git https://alice:S3C/RET@example.org/x",
		"err", fmt.Errorf("fetch: %w", errors.New("https://alice:S3C#RET@example.org/x: refused")),
		slog.Group("g", "url", "https://T0KEN@example.org/y"))
	out := buf.String()
	for _, secret := range []string{"T0KEN", "S3C", "RET", "alice"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line holds %q: %s", secret, out)
		}
	}
	if strings.Count(out, "REDACTED@") != 4 {
		t.Errorf("want 4 redactions: %s", out)
	}
}
