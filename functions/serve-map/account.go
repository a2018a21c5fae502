package function

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/go-chi/chi/v5"

	"github.com/dronetrack/dronetrack/core/problem"
)

// accountFS holds the account pages (sign up, log in, drones, invite,
// settings): plain HTML forms and one script, kept apart from the map's
// built front end (web/) so either can change without the other.
//
//go:embed account
var accountFS embed.FS

// serveAccount answers GET /account/{page}.
func (s *server) serveAccount(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "page")
	b, err := fs.ReadFile(accountFS, "account/"+path.Base(name))
	if err != nil || name == "" {
		problem.Write(w, http.StatusNotFound, "", "no such page", problem.WithInstance(r.URL.Path))
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
