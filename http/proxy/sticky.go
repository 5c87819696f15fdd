package proxy

import (
	"strconv"
	"time"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http"
	"github.com/plb/plb/pool"
)

// Sticky sessions (sticky_cookie): a response from a node the request's
// cookie did not name carries "Set-Cookie: NAME=<token>", the node's
// pool.Token; a request whose cookie names a node of the pool that is
// available goes to that node, else to the balance method's choice (and
// its response sets the cookie anew). The cookie is read once, with the
// head (reqState.sticky), and the node it names is preferred at every
// pick of the request: the first, a resend, a retry, a queued client's.

// stickyCookie is a service's sticky_cookie, built once with its Settings.
type stickyCookie struct {
	name string
	// prefix is "Set-Cookie: NAME="; attrs the attributes after the
	// token and the line's end, [0] without Secure and [1] with it.
	prefix []byte
	attrs  [2][]byte
	// secure: every response is Secure (enable_ssl or
	// sticky_cookie_secure); else only those to a TLS client (a TLS
	// selector's).
	secure bool
}

// newStickyCookie is svc's sticky cookie, nil when it has none.
func newStickyCookie(svc *config.Service) *stickyCookie {
	if svc.StickyCookie == "" {
		return nil
	}
	var a []byte
	if svc.StickyCookiePath != "" {
		a = append(append(a, "; Path="...), svc.StickyCookiePath...)
	}
	if d := svc.StickyCookieMaxAge; d > 0 {
		a = strconv.AppendInt(append(a, "; Max-Age="...), int64(max(d/time.Second, 1)), 10)
	}
	if svc.StickyCookieHTTPOnly {
		a = append(a, "; HttpOnly"...)
	}
	if ss := svc.StickyCookieSameSite; ss != "" && ss != "off" {
		a = append(append(a, "; SameSite="...), ss...)
	}
	return &stickyCookie{
		name:   svc.StickyCookie,
		prefix: []byte("Set-Cookie: " + svc.StickyCookie + "="),
		attrs:  [2][]byte{append(a[:len(a):len(a)], "\r\n"...), append(a[:len(a):len(a)], "; Secure\r\n"...)},
		secure: svc.EnableSSL || svc.StickyCookieSecure,
	}
}

// stickyOf is the token request r's sticky cookie carries, and whether
// it carries one: false when the service has no sticky cookie or the
// request none that parses (pool.ParseToken). Which node the token names
// is looked up at each pick (client.stickyNode), so that a node removed
// meanwhile is not used. Call it while r's views are valid. It allocates
// nothing.
func stickyOf(st *Settings, r *http.RequestHead) (pool.Token, bool) {
	if st.sticky == nil {
		return 0, false
	}
	return pool.ParseToken(cookieValue(r, st.sticky.name))
}

// appendSetCookie appends the Set-Cookie field naming node, Secure when
// the service says so or tls (the client's connection is TLS).
func (sc *stickyCookie) appendSetCookie(dst []byte, node *pool.Node, tls bool) []byte {
	dst = node.Token().Append(append(dst, sc.prefix...))
	if sc.secure || tls {
		return append(dst, sc.attrs[1]...)
	}
	return append(dst, sc.attrs[0]...)
}

// stickyNode is the node of the pool the request's sticky cookie names
// while it may take the request (available, and not tried for it yet),
// else nil.
func (cl *client) stickyNode() *pool.Node {
	rs := cl.rs
	if !rs.hasSticky || cl.st.Pool == nil {
		return nil
	}
	if n := cl.st.Pool.ByToken(rs.sticky); n != nil && n.Available() && !rs.skipTried(n) {
		return n
	}
	return nil
}

// stuck reports whether the request's sticky cookie names node: its
// response need not set the cookie.
func (rs *reqState) stuck(node *pool.Node) bool {
	return rs.hasSticky && node.Token() == rs.sticky
}

// pick chooses the node for the request: its sticky node (stickyNode),
// else the balance method's (nil: none left).
func (cl *client) pick() *pool.Node {
	if n := cl.stickyNode(); n != nil {
		return n
	}
	return cl.st.Pool.Pick(cl.rs.key, cl.skip())
}
