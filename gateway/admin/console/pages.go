package console

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// style is the pages' only style; the CSP names its hash.
const style = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}code,pre{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
.block{color:#a00}.detect{color:#a60}.deny{color:#606}form label{margin-right:.8em}.tops{display:flex;gap:2em;flex-wrap:wrap}
svg rect{fill:#c55}`

var csp = func() string {
	sum := sha256.Sum256([]byte(style))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}()

// Handler serves the console under /console from store.
type Handler struct {
	Store Lister
	Now   func() time.Time
}

// Register adds the console's pages to mux (the admin listener's, behind its token).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /console", h.list)
	mux.HandleFunc("GET /console/events/{id}", h.event)
	mux.HandleFunc("GET /console/events/{id}/exclusion.conf", h.exclusion)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func secure(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
}

// filterOf reads the list's filters from its query.
func filterOf(r *http.Request, now time.Time) (Filter, string) {
	q := r.URL.Query()
	since := q.Get("since")
	d, err := time.ParseDuration(since)
	if err != nil || d <= 0 || d > 30*24*time.Hour {
		since, d = "24h", 24*time.Hour
	}
	return Filter{Since: now.Add(-d), Route: q.Get("route"), Rule: q.Get("rule"), Client: q.Get("client"),
		Path: q.Get("path"), RequestID: q.Get("id")}, since
}

// maxList bounds a page's events.
const maxList = 200

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	f, since := filterOf(r, now)
	events, err := h.Store.List(r.Context(), f, maxList)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	hour, _ := h.Store.List(r.Context(), Filter{Since: now.Add(-time.Hour)}, 5000)
	day, _ := h.Store.List(r.Context(), Filter{Since: now.Add(-24 * time.Hour)}, 5000)
	secure(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	listPage.Execute(w, map[string]any{"Style": template.CSS(style), "F": f, "Since": since, "Events": events,
		"Tops": []tops{topsOf("last hour", hour), topsOf("last day", day)}})
}

func (h *Handler) find(w http.ResponseWriter, r *http.Request) (Event, bool) {
	id := r.PathValue("id")
	events, err := h.Store.List(r.Context(), Filter{RequestID: id}, 1)
	if err != nil || len(events) == 0 {
		http.Error(w, "no such event", http.StatusNotFound)
		return Event{}, false
	}
	return events[0], true
}

func (h *Handler) event(w http.ResponseWriter, r *http.Request) {
	e, ok := h.find(w, r)
	if !ok {
		return
	}
	secure(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	eventPage.Execute(w, map[string]any{"Style": template.CSS(style), "E": e, "Exclusions": e.Exclusions()})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func (h *Handler) exclusion(w http.ResponseWriter, r *http.Request) {
	e, ok := h.find(w, r)
	if !ok {
		return
	}
	secure(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="sekisho-exclusion-`+unsafeName.ReplaceAllString(e.ID, "_")+`.conf"`)
	w.Write([]byte(e.Exclusions()))
}

// tops is the most frequent rules, clients and paths over a window.
type tops struct {
	Window                string
	Total                 int
	Rules, Clients, Paths []bar
}

// bar is one row of a small chart: a label, its count, its width in px.
type bar struct {
	Label string
	Count int
	Width int
}

func topsOf(window string, events []Event) tops {
	rules, clients, paths := map[string]int{}, map[string]int{}, map[string]int{}
	for _, e := range events {
		for _, m := range e.Matches {
			if m.Exclusion != "" { // the anomaly-score rules say nothing of their own
				rules[strconv.Itoa(m.RuleID)+" "+m.Message]++
			}
		}
		if e.Reason != "" {
			rules["access: "+e.Reason]++
		}
		clients[e.ClientIP]++
		paths[e.Path]++
	}
	return tops{Window: window, Total: len(events), Rules: bars(rules), Clients: bars(clients), Paths: bars(paths)}
}

func bars(counts map[string]int) []bar {
	var out []bar
	for k, n := range counts {
		out = append(out, bar{Label: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Count > out[j].Count || out[i].Count == out[j].Count && out[i].Label < out[j].Label
	})
	if len(out) > 10 {
		out = out[:10]
	}
	for i := range out {
		out[i].Width = 1 + 150*out[i].Count/out[0].Count
	}
	return out
}

var funcs = template.FuncMap{
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
	"lower": strings.ToLower,
	"list":  func(xs ...string) []string { return xs },
	// decoded shows a query as its application reads it (escaped on output
	// all the same); one that does not decode is shown as it came.
	"decoded": func(q string) string {
		if d, err := url.QueryUnescape(q); err == nil {
			return d
		}
		return q
	},
}

var listPage = template.Must(template.New("list").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sekisho security events</title><style>{{.Style}}</style></head><body>
<h1>Security events</h1>
<form method="get" action="/console">
<label>last <select name="since">{{range $d := (list "1h" "24h" "168h")}}<option value="{{$d}}"{{if eq $d $.Since}} selected{{end}}>{{$d}}</option>{{end}}</select></label>
<label>route <input name="route" value="{{.F.Route}}"></label>
<label>rule <input name="rule" value="{{.F.Rule}}"></label>
<label>client <input name="client" value="{{.F.Client}}"></label>
<label>path <input name="path" value="{{.F.Path}}"></label>
<label>request id <input name="id" value="{{.F.RequestID}}"></label>
<button>filter</button></form>
<div class="tops">{{range .Tops}}<section><h2>Top, {{.Window}} ({{.Total}} events)</h2>
<h3>Rules</h3><table>{{range .Rules}}<tr><td>{{.Label}}</td><td>{{.Count}}</td><td><svg width="152" height="10"><rect width="{{.Width}}" height="10"/></svg></td></tr>{{end}}</table>
<h3>Clients</h3><table>{{range .Clients}}<tr><td><a href="/console?client={{.Label}}">{{.Label}}</a></td><td>{{.Count}}</td><td><svg width="152" height="10"><rect width="{{.Width}}" height="10"/></svg></td></tr>{{end}}</table>
<h3>Paths</h3><table>{{range .Paths}}<tr><td><a href="/console?path={{.Label}}">{{.Label}}</a></td><td>{{.Count}}</td><td><svg width="152" height="10"><rect width="{{.Width}}" height="10"/></svg></td></tr>{{end}}</table>
</section>{{end}}</div>
<h2>Events</h2>
<table><tr><th>time (UTC)</th><th>what</th><th>client</th><th>request</th><th>route</th><th>rules</th><th>score</th></tr>
{{range .Events}}<tr><td>{{when .Time}}</td><td class="{{lower .Kind}}">{{.Kind}}</td><td>{{.ClientIP}}</td>
<td><a href="/console/events/{{.ID}}">{{.Method}} {{.Host}}{{.Path}}{{if .Query}}?{{decoded .Query}}{{end}}</a></td><td>{{.Route}}</td>
<td>{{range .Matches}}{{.RuleID}} {{end}}{{.Reason}}</td><td>{{.Score}}</td></tr>
{{else}}<tr><td colspan="7">No events.</td></tr>{{end}}</table>
</body></html>
`))

var eventPage = template.Must(template.New("event").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sekisho event {{.E.ID}}</title><style>{{.Style}}</style></head><body>
<p><a href="/console">all events</a></p>
<h1 class="{{lower .E.Kind}}">{{.E.Kind}}: {{.E.Method}} {{.E.Host}}{{.E.Path}}</h1>
<table>
<tr><th>time (UTC)</th><td>{{when .E.Time}}</td></tr>
<tr><th>request id</th><td>{{.E.ID}}</td></tr>
<tr><th>client</th><td>{{.E.ClientIP}}</td></tr>
<tr><th>user agent</th><td>{{.E.UserAgent}}</td></tr>
<tr><th>query</th><td><code>{{decoded .E.Query}}</code></td></tr>
<tr><th>frontend / route / backend</th><td>{{.E.Frontend}} / {{.E.Route}} / {{.E.Backend}}</td></tr>
<tr><th>policy</th><td>{{.E.Policy}}</td></tr>
<tr><th>status</th><td>{{.E.Status}}</td></tr>
<tr><th>anomaly score</th><td>{{.E.Score}}</td></tr>
{{if .E.Reason}}<tr><th>access decision</th><td>{{.E.Reason}}</td></tr>{{end}}
{{if .E.Replica}}<tr><th>replica</th><td>{{.E.Replica}}</td></tr>{{end}}
</table>
<h2>Why</h2>
<table><tr><th>rule</th><th>message</th><th>variable</th></tr>
{{range .E.Matches}}<tr><td>{{.RuleID}}</td><td>{{.Message}}</td><td><code>{{.Variable}}</code></td></tr>{{end}}</table>
<h2>The exclusion that lets it through</h2>
<p>Scoped to these rules, these variables and this path. <a href="/console/events/{{.E.ID}}/exclusion.conf" download>Download it as a rules file</a> for the policy's rules folder (<code>before-crs/</code>), then reload.</p>
<pre>{{.Exclusions}}</pre>
</body></html>
`))
