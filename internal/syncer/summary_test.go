package syncer

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestBrief(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, ""},
		{1, "f0"},
		{5, "f0, f1, f2, f3, f4"},
		{6, "f0, f1, f2, f3, f4, … and 1 more"},
		{20000, "f0, f1, f2, f3, f4, … and 19,995 more"},
	} {
		var names []string
		for i := range tc.n {
			names = append(names, fmt.Sprintf("f%d", i))
		}
		if got := Brief(names); got != tc.want {
			t.Errorf("Brief(%d names) = %q, want %q", tc.n, got, tc.want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 123456: "123,456", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

// Issue 12: 20,000 index entries without a stored package are one
// warning per cycle at info level; the full list is at debug level only.
func TestRecordSummarisesEachKindOnce(t *testing.T) {
	var missing []string
	for i := range 20000 {
		missing = append(missing, fmt.Sprintf("c-1.0.%d.tgz", i))
	}
	res := &Result{Repos: []RepoResult{{Name: "r", Missing: missing, Adopted: []string{"a-1.tgz"}}}}
	for _, tc := range []struct {
		level     slog.Level
		wantLines int
	}{{slog.LevelInfo, 2}, {slog.LevelDebug, 3}} {
		var buf bytes.Buffer
		s := &Syncer{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))}
		s.record(time.Now(), res)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != tc.wantLines {
			t.Fatalf("level %s: %d log lines, want %d:\n%.2000s", tc.level, len(lines), tc.wantLines, buf.String())
		}
		if !strings.Contains(buf.String(), "count=20000") || !strings.Contains(buf.String(), "and 19,995 more") {
			t.Errorf("level %s: the warning does not count the entries:\n%.2000s", tc.level, buf.String())
		}
		if full := strings.Contains(buf.String(), missing[19999]); full != (tc.level == slog.LevelDebug) {
			t.Errorf("level %s: full list logged: %v", tc.level, full)
		}
	}
}
