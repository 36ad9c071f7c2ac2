package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
)

// userinfoRE matches what looks like credentials in a URL: everything
// between "scheme://" and the last '@' before white space (a password may
// hold '/', '#', '%' or '@', so no URL parser is trusted with it), and the
// "user:password@" of scp-like addresses. It errs on the side of hiding
// too much: in "https://host/a@b" the host is hidden as well.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^\s]*@|(^|[\s"'=(\[])[^\s:/@"'=]+:[^\s/@"'][^\s@"']*@`)

// redact replaces anything in s that looks like userinfo with "REDACTED@".
// config.CheckGitURL refuses credentials in git.url; this is the second
// line, for every log line, the summary and plan output.
func redact(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}${2}REDACTED@")
}

// redactHandler redacts userinfo from the message and every attribute of
// each record before handing it on.
type redactHandler struct{ h slog.Handler }

func (r redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactHandler{r.h.WithAttrs(red)}
}

func (r redactHandler) WithGroup(name string) slog.Handler { return redactHandler{r.h.WithGroup(name)} }

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		// Errors and other values are logged as their text: redact it.
		return slog.String(a.Key, redact(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactWriter redacts each Write; the summary writes whole lines or cells.
type redactWriter struct{ w io.Writer }

func (r redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(r.w, redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
