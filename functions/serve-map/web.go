package function

import (
	"bytes"
	"compress/gzip"
	"embed"
	"hash/fnv"
	"html"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/problem"
)

// webFS is the built front end (frontend/, `npm run build`): index.html and
// hashed files under assets/.
//
//go:embed web
var webFS embed.FS

// builtTilesMeta is the tile template the build writes into index.html;
// serveIndex swaps in TILES_URL so the page asks only for what the CSP allows.
const builtTilesMeta = `<meta name="dronetrack:tiles" content="https://tile.openstreetmap.org/{z}/{x}/{y}.png">`

// serveIndex answers the page. It must not be cached (it names the current
// hashed assets), so it is revalidated by ETag on every load.
func (s *server) serveIndex(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(webFS, "web/index.html")
	if err != nil {
		problem.Write(w, http.StatusInternalServerError, "", "front end missing from the build")
		return
	}
	b = bytes.Replace(b, []byte(builtTilesMeta),
		[]byte(`<meta name="dronetrack:tiles" content="`+html.EscapeString(s.tiles)+`">`), 1)
	h := fnv.New64a()
	h.Write(b)
	etag := `"` + strconv.FormatUint(h.Sum64(), 36) + `"`
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

// gzipped holds compressed copies of text assets, made on first request.
var gzipped sync.Map // name -> []byte

// serveAsset answers a built file. Names carry a content hash, so a year of
// immutable caching is safe: a new build means new names.
func (s *server) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		notFound(w, r)
		return
	}
	b, err := fs.ReadFile(webFS, "web/assets/"+name)
	if err != nil {
		notFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("ETag", `"`+name+`"`)
	if r.Header.Get("If-None-Match") == `"`+name+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if compressible(ct) {
		hd.Add("Vary", "Accept-Encoding")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			if z := gzipOnce(name, b); z != nil {
				hd.Set("Content-Encoding", "gzip")
				b = z
			}
		}
	}
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func compressible(ct string) bool {
	return strings.HasPrefix(ct, "text/") || strings.Contains(ct, "javascript") || strings.Contains(ct, "json") || strings.Contains(ct, "svg")
}

func gzipOnce(name string, b []byte) []byte {
	if z, ok := gzipped.Load(name); ok {
		return z.([]byte)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil || zw.Close() != nil {
		return nil
	}
	z, _ := gzipped.LoadOrStore(name, buf.Bytes())
	return z.([]byte)
}
