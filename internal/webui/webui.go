// Package webui is the gateway's web page for energy staff and operators:
// a week view per site (bookings, occupancy windows and the points'
// comfort periods on a time axis), the energy report, the no-show
// report, the live event list, and the status window of doors and
// alarm areas with override buttons for operators. It is plain HTML,
// CSS and JavaScript embedded in the binary: no build step, no server
// of its own. The page talks to the HTTP API (internal/httpapi) on the
// same origin with the user's bearer token, so the gateway serves both
// from one listener: the API under /api/, the page at /.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// Files returns the page's files (index.html, app.js, ...), for tests
// and for a gateway that wants to serve them under a prefix of its own.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	return sub
}

// csp lets the page load only its own files and talk only to its own
// origin: no inline script, no third-party anything.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Handler serves the page at / (index.html) and its files beside it.
// Only GET and HEAD are answered; anything else is 405. Paths that name
// no file are 404, never the index: a mistyped API path should not come
// back as a web page. The answers carry a strict Content-Security-Policy
// and ask browsers and proxies to revalidate, so an upgraded gateway's
// page is never mixed with an old cached script.
func Handler() http.Handler {
	files := Files()
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(files, name); err != nil || st.IsDir() {
				http.NotFound(w, r)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		if name == "index.html" {
			// FileServer redirects /index.html to /; serve / itself.
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/"
			r = r2
		}
		fileServer.ServeHTTP(w, r)
	})
}
