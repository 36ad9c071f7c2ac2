package publisher

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// Handler serves the repository read-only over HTTP, as a Helm chart
// repository: GET and HEAD of index.yaml and of the package (.tgz) and
// provenance (.tgz.prov) files directly under the prefix, streamed from the
// store (no object is held in memory whole, whatever its size). Responses
// carry the store version as ETag, so conditional requests work; range
// requests are honoured where the store can seek within one version (the
// local store) and otherwise answered with the whole object. Packages,
// never replaced, are marked immutable.
//
// A path no object can have (a NUL or other control character, invalid
// UTF-8) is answered 400 and logged at debug level: it is the client's
// fault, not the store's.
func (p *Publisher) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only chart repository", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		if !wellFormed(name) {
			p.log.Debug("serve: malformed path", "store", p.store.String(), "path", r.URL.EscapedPath())
			http.Error(w, "malformed path", http.StatusBadRequest)
			return
		}
		served := name == "index.yaml" || strings.HasSuffix(name, ".tgz") || strings.HasSuffix(name, ".tgz.prov")
		if !served || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		rc, obj, err := p.store.Open(r.Context(), p.key(name))
		switch {
		case errors.Is(err, store.ErrNotExist):
			http.NotFound(w, r)
			return
		case errors.Is(err, store.ErrInvalidKey):
			p.log.Debug("serve: path the store cannot hold", "store", p.store.String(), "chart", name, "err", err)
			http.Error(w, "malformed path", http.StatusBadRequest)
			return
		case err != nil && r.Context().Err() != nil:
			p.log.Debug("serve: client went away", "store", p.store.String(), "chart", name, "err", err)
			return
		case err != nil:
			p.log.Error("serve", "store", p.store.String(), "chart", name, "err", err)
			http.Error(w, "store unavailable", http.StatusBadGateway)
			return
		}
		defer rc.Close()
		h := w.Header()
		h.Set("ETag", `"`+obj.Version+`"`)
		switch {
		case name == "index.yaml":
			h.Set("Content-Type", "application/yaml")
			h.Set("Cache-Control", "no-cache")
		case strings.HasSuffix(name, ".tgz"):
			h.Set("Content-Type", "application/gzip")
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
		content, ok := rc.(io.ReadSeeker)
		if !ok {
			// A whole answer is always a valid answer to a range request.
			r.Header.Del("Range")
			content = &sizedReader{r: rc, size: obj.Size}
		}
		http.ServeContent(w, r, name, time.Time{}, content)
	})
}

// wellFormed reports whether a request path could name an object: valid
// UTF-8 without control characters.
func wellFormed(name string) bool {
	return utf8.ValidString(name) && !strings.ContainsFunc(name, unicode.IsControl)
}

// sizedReader lets http.ServeContent stream an object that cannot seek: it
// answers the two seeks ServeContent makes before reading (to the end, for
// the size, and back to the start) and no other.
type sizedReader struct {
	r    io.Reader
	size int64
	read bool
}

func (s *sizedReader) Read(p []byte) (int, error) {
	s.read = true
	return s.r.Read(p)
}

func (s *sizedReader) Seek(offset int64, whence int) (int64, error) {
	switch {
	case offset == 0 && whence == io.SeekEnd && !s.read:
		return s.size, nil
	case offset == 0 && whence == io.SeekStart && !s.read:
		return 0, nil
	}
	return 0, errors.New("seek: object is streamed and cannot seek")
}
