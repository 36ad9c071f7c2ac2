package publisher

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// Handler serves the repository read-only over HTTP, as a Helm chart
// repository: GET and HEAD of index.yaml and of the package (.tgz) and
// provenance (.tgz.prov) files directly under the prefix, read from the
// store. Responses carry the store version as ETag (conditional and range
// requests work); packages, never replaced, are marked immutable.
func (p *Publisher) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only chart repository", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/")
		served := name == "index.yaml" || strings.HasSuffix(name, ".tgz") || strings.HasSuffix(name, ".tgz.prov")
		if !served || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		b, ver, err := p.store.Get(r.Context(), p.key(name))
		if errors.Is(err, store.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			p.log.Error("serve", "store", p.store.String(), "chart", name, "err", err)
			http.Error(w, "store unavailable", http.StatusBadGateway)
			return
		}
		h := w.Header()
		h.Set("ETag", `"`+ver+`"`)
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
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
}
