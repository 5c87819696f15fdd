package manage

import (
	"fmt"
	"html"
	"strconv"
	"strings"

	"github.com/plb/plb/http"
)

// serveHTTP answers one HTTP request on the management port, then the
// connection closes (as Perlbal's does). Routes:
//
//	/ and /status   plb's status page (HTML, refreshing itself)
//	/status.json    the same figures as JSON
//	/metrics        Prometheus text format
//	/healthz        200 "ok" while serving, 503 "draining" during a
//	                graceful stop (for keepalived and load balancer checks;
//	                the listener closes then too, which a check sees)
//	/perlbal        Perlbal's management index
//	/socks, /obj, /service?NAME   Perlbal's pages
//
// Anything else is Perlbal's 404.
func (mc *console) serveHTTP(head []byte) []byte {
	var p http.Parser
	var req http.RequestHead
	if n, err := p.ParseRequest(head, &req); err != nil || n == 0 {
		return response("400 Bad Request", "text/html", []byte("<h1>400 Bad Request</h1>\n"), false)
	}
	headOnly := string(req.Method) == "HEAD"
	uri := string(req.Path)
	switch uri {
	case "/", "/status":
		return response("200 OK", "text/html; charset=utf-8", mc.statusPage(), headOnly)
	case "/status.json":
		return response("200 OK", "application/json", mc.statusJSON(), headOnly)
	case "/metrics":
		return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", mc.metrics(), headOnly)
	case "/healthz":
		if mc.svc.rt.Draining() {
			return response("503 Service Unavailable", "text/plain", []byte("draining\n"), headOnly)
		}
		return response("200 OK", "text/plain", []byte("ok\n"), headOnly)
	}
	code, body := mc.perlbalPage(uri)
	return response(code, "text/html", body, headOnly)
}

// response is a whole HTTP/1.0 response (Perlbal's header spelling).
func response(code, ctype string, body []byte, headOnly bool) []byte {
	out := fmt.Appendf(nil, "HTTP/1.0 %s\r\nContent-type: %s\r\nContent-Length: %d\r\nCache-Control: no-cache\r\n\r\n",
		code, ctype, len(body))
	if !headOnly {
		out = append(out, body...)
	}
	return out
}

// perlbalPage is Perlbal's management interface: the index, socks, obj
// and a service's details, each command's output in a <pre> box.
func (mc *console) perlbalPage(uri string) (string, []byte) {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\n")
	b.WriteString("<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n")
	b.WriteString("<head><title>perlbal management interface</title><meta name=\"generator\" content=\"plb\" /></head><body>")
	code := "200 OK"
	box := func(cmd string, link bool) {
		fmt.Fprintf(&b, "<pre><div style='margin-bottom: 5px; background: #ddd'><b>%s</b></div>", html.EscapeString(cmd))
		for _, line := range mc.run(cmd) {
			line = html.EscapeString(line)
			if link {
				line = linkService(line)
			}
			b.WriteString(line + "\n")
		}
		b.WriteString("</pre>\n")
	}
	name, isService := strings.CutPrefix(uri, "/service?")
	switch {
	case uri == "/perlbal":
		b.WriteString("<h1>perlbal management interface</h1><ul>")
		b.WriteString("<li><a href='/'>plb status</a></li>")
		b.WriteString("<li><a href='/socks'>Sockets</a></li>")
		b.WriteString("<li><a href='/obj'>Objects in use</a></li>")
		b.WriteString("<li>Service Details<ul>")
		cfg := mc.svc.rt.Config()
		for _, n := range serviceNames(cfg) {
			s := cfg.Service(n)
			listen := ""
			if s.Listen != "" {
				listen = " (" + html.EscapeString(s.Listen) + ")"
			}
			fmt.Fprintf(&b, "<li><a href='/service?%s'>%s</a> - %s%s</li>\n", n, n, html.EscapeString(s.Role), listen)
		}
		b.WriteString("</ul></li></ul>")
	case uri == "/socks":
		box("socks summary", false)
		box("socks", true)
	case uri == "/obj":
		box("obj", false)
	case isService && isWord(name):
		box("show service "+name, false)
	default:
		code = "404 Not found"
		b.WriteString("<h1>" + code + "</h1>")
	}
	b.WriteString("<hr style='margin-top: 10px' /><p><a href='/perlbal'>Perlbal management</a>.</p></body></html>\n")
	return code, []byte(b.String())
}

// linkService turns "service 'NAME'" in a socks line into a link.
func linkService(line string) string {
	const pre = "service &#39;"
	i := strings.Index(line, pre)
	if i < 0 {
		return line
	}
	rest := line[i+len(pre):]
	n := wordLen(rest)
	if n == 0 || !strings.HasPrefix(rest[n:], "&#39;") {
		return line
	}
	name := rest[:n]
	return line[:i] + "<a href=\"/service?" + name + "\">" + name + "</a>" + rest[n+len("&#39;"):]
}

// run executes an output command in a fresh context and returns its lines
// without the closing ".".
func (mc *console) run(cmd string) []string {
	saved := mc.out
	mc.out = nil
	mc.command(cmd)
	lines := strings.Split(strings.TrimSuffix(string(mc.out), "\r\n"), "\r\n")
	mc.out = saved
	if n := len(lines); n > 0 && lines[n-1] == "." {
		lines = lines[:n-1]
	}
	return lines
}

// quantile estimates the q-quantile of h in seconds by linear interpolation
// inside its bucket (as Prometheus' histogram_quantile); NaN-free: 0 for an
// empty histogram, the highest bound for the open bucket.
func quantile(h *Histogram, q float64) float64 {
	if h == nil || h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var seen float64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			if i >= len(h.Bounds) {
				return h.Bounds[len(h.Bounds)-1]
			}
			lo := 0.0
			if i > 0 {
				lo = h.Bounds[i-1]
			}
			return lo + (h.Bounds[i]-lo)*(rank-seen)/float64(c)
		}
		seen += float64(c)
	}
	return h.Bounds[len(h.Bounds)-1]
}

// formatSeconds writes a duration in seconds for people: "850µs", "12ms",
// "1.5s".
func formatSeconds(s float64) string {
	switch {
	case s <= 0:
		return "-"
	case s < 0.001:
		return strconv.FormatFloat(s*1e6, 'f', 0, 64) + "µs"
	case s < 1:
		return strconv.FormatFloat(s*1e3, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(s, 'f', 2, 64) + "s"
}
