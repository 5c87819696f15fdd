package manage

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"

	"github.com/plb/plb/config"
)

// statusRefresh is how often the status page reloads itself, in seconds.
const statusRefresh = 5

// statusCSS styles the status page in the spirit of HAProxy's: one table
// per section, a coloured state per row.
const statusCSS = `
body { font-family: Helvetica, Arial, sans-serif; font-size: 13px; margin: 12px 16px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 15px; margin: 18px 0 6px 0; }
.info { color: #555; margin-bottom: 10px; }
.info a { margin-right: 10px; }
table { border-collapse: collapse; margin-bottom: 14px; }
th, td { border: 1px solid #999; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #e0e0e0; font-weight: bold; }
td.l, th.l { text-align: left; }
th.c { text-align: center; }
tr.title th { background: #3060a0; color: #fff; text-align: left; font-size: 14px; }
tr.up td { background: #c8f0c8; }
tr.down td { background: #f4b0b0; }
tr.disabled td { background: #ddd; color: #666; }
td.state { font-weight: bold; text-align: center; }
tr.up td.state { color: #060; }
tr.down td.state { color: #a00; }
td.err { color: #a00; font-weight: bold; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border: 1px solid #999; }
`

// statusPage renders the HTML status page: the services with their
// traffic, then each pool with its nodes and their state.
func (mc *console) statusPage() []byte {
	sn := mc.snapshot()
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
	fmt.Fprintf(&b, "<meta http-equiv=\"refresh\" content=\"%d\">", statusRefresh)
	b.WriteString("<title>plb status</title><style>" + statusCSS + "</style></head><body>\n")
	fmt.Fprintf(&b, "<h1>plb status</h1><div class=\"info\">version %s &middot; pid %d &middot; up %s &middot; %d goroutines &middot; refreshed %s every %ds</div>\n",
		html.EscapeString(sn.Version), sn.Pid, formatUptime(time.Duration(sn.Uptime*float64(time.Second))),
		sn.Go.Goroutines, mc.svc.rt.Now().Format("15:04:05"), statusRefresh)
	b.WriteString("<div class=\"info\"><a href=\"/metrics\">/metrics</a><a href=\"/status.json\">/status.json</a><a href=\"/perlbal\">Perlbal console pages</a></div>\n")

	b.WriteString("<h2>Services</h2>\n<table>\n<tr><th class=\"l\">service</th><th class=\"l\">role</th><th class=\"l\">listen</th><th class=\"c\">state</th>" +
		"<th>requests</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>502</th><th>503</th><th>504</th>" +
		"<th>clients</th><th>backends</th><th>idle</th><th>queue</th><th>in</th><th>out</th><th>p50</th><th>p99</th></tr>\n")
	for _, s := range sn.Services {
		class, state := "up", "UP"
		if !s.Enabled {
			class, state = "disabled", "DISABLED"
		} else if s.Listen == "" {
			class, state = "disabled", "NO LISTEN"
		}
		fmt.Fprintf(&b, "<tr class=\"%s\"><td class=\"l\"><b>%s</b></td><td class=\"l\">%s</td><td class=\"l\">%s</td><td class=\"state\">%s</td>",
			class, html.EscapeString(s.Name), html.EscapeString(s.Role), html.EscapeString(s.Listen), state)
		if s.Role != config.RoleReverseProxy && s.Role != config.RoleWebServer {
			// Roles without traffic figures of their own.
			b.WriteString(strings.Repeat("<td></td>", 16) + "</tr>\n")
			continue
		}
		fmt.Fprintf(&b, "<td>%d</td>", s.Requests)
		for c := 2; c <= 5; c++ {
			fmt.Fprintf(&b, "<td>%d</td>", s.status.Responses[c])
		}
		for _, code := range []string{"502", "503", "504"} {
			if s.Errors == nil {
				b.WriteString("<td></td>")
			} else {
				b.WriteString(errCell(s.Errors[code]))
			}
		}
		fmt.Fprintf(&b, "<td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%s</td><td>%s</td>",
			s.Clients, s.Backends, s.Idle, s.Waiting, formatBytes(s.BytesIn), formatBytes(s.BytesOut))
		if s.Latency != nil && s.Latency.Count > 0 {
			fmt.Fprintf(&b, "<td>%s</td><td>%s</td>", formatSeconds(s.Latency.P50), formatSeconds(s.Latency.P99))
		} else {
			b.WriteString("<td></td><td></td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")

	b.WriteString("<h2>Pools</h2>\n")
	if len(sn.Pools) == 0 {
		b.WriteString("<p>No pools.</p>\n")
	}
	now := mc.svc.rt.Now().Unix()
	for _, p := range sn.Pools {
		users := "no service"
		if len(p.Services) > 0 {
			users = strings.Join(p.Services, ", ")
		}
		up := 0
		for _, n := range p.Nodes {
			if n.Up {
				up++
			}
		}
		b.WriteString("<table>\n")
		fmt.Fprintf(&b, "<tr class=\"title\"><th colspan=\"12\">pool %s &middot; %s &middot; %d/%d nodes up &middot; used by %s</th></tr>\n",
			html.EscapeString(p.Name), html.EscapeString(p.Method), up, len(p.Nodes), html.EscapeString(users))
		if src := p.Source; src != nil {
			// Where the nodes come from (nodes_from), and whether it answers.
			class, state := "up", "answers"
			if !src.OK {
				class, state = "down", "FAILS since "+src.Since.UTC().Format("15:04:05")+" ("+src.Err+"); the last nodes are kept"
			}
			fmt.Fprintf(&b, "<tr class=\"%s\"><td class=\"l\" colspan=\"12\">nodes from %s: %s</td></tr>\n",
				class, html.EscapeString(src.Source), html.EscapeString(state))
		}
		b.WriteString("<tr><th class=\"l\">node</th><th class=\"c\">state</th><th>active</th><th>responses</th><th>connects</th><th>attempts</th>" +
			"<th>failures</th><th>last response</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th></tr>\n")
		if len(p.Nodes) == 0 {
			b.WriteString("<tr class=\"disabled\"><td class=\"l\" colspan=\"12\">no nodes</td></tr>\n")
		}
		for _, n := range p.Nodes {
			class, state := "up", "UP"
			switch {
			case !n.Up:
				class, state = "down", "DOWN"
			case n.Weight == 0:
				class, state = "disabled", "DRAIN"
			case n.Weight != 1:
				state = "UP w" + strconv.Itoa(n.Weight)
			}
			last := "never"
			if n.LastResponse > 0 {
				last = formatUptime(time.Duration(now-n.LastResponse)*time.Second) + " ago"
			}
			fmt.Fprintf(&b, "<tr class=\"%s\"><td class=\"l\">%s</td><td class=\"state\">%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td>%s<td>%s</td>",
				class, html.EscapeString(n.Name), state, n.Active, n.Requests, n.Connects, n.Attempts, errCell(n.Failures), last)
			for c := 2; c <= 5; c++ {
				fmt.Fprintf(&b, "<td>%d</td>", n.Recent[strconv.Itoa(c)+"xx"])
			}
			b.WriteString("</tr>\n")
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("<div class=\"legend\"><span style=\"background:#c8f0c8\">up</span><span style=\"background:#f4b0b0\">down</span>" +
		"<span style=\"background:#ddd\">disabled</span> node 2xx..5xx: the last 500 responses</div>\n</body></html>\n")
	return []byte(b.String())
}

// errCell is a count cell, red when not zero.
func errCell(n int64) string {
	if n == 0 {
		return "<td>0</td>"
	}
	return "<td class=\"err\">" + strconv.FormatInt(n, 10) + "</td>"
}

func formatUptime(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func formatBytes(n int64) string {
	switch {
	case n < 10<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 10<<20:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	case n < 10<<30:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n>>30, 10) + " GiB"
}
