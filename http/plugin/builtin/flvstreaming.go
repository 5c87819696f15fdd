package builtin

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"

	"github.com/plb/plb/config"
	"github.com/plb/plb/http/plugin"
)

// flvStreaming is Perlbal's FlvStreaming on a reverse proxy: a request for
// <path>.flv?start=N (N > 0) asks the backend for "Range: bytes=N-", and
// its 206 answer reaches the client as a 200 of type video/x-flv, without
// Accept-Ranges and Content-Range, with the 13-byte FLV file header before
// the body and Content-Length counting it: a player can start a video
// anywhere.
//
// Unlike Perlbal's, only a 206 is rewritten (a backend that ignored the
// Range, or answered 416, is passed on as it answered), N must be a
// number, and the header ends with PreviousTagSize0 = 0, as the FLV
// format says (Perlbal wrote 9).
type flvStreaming struct{}

// flvHeader is an FLV file header (version 1, video) and
// PreviousTagSize0.
var flvHeader = []byte("FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00")

func (*flvStreaming) Describe() config.Plugin { return describe("FlvStreaming") }

func (*flvStreaming) Register(svc *config.Service) (any, error) {
	if svc.Role != config.RoleReverseProxy {
		return nil, fmt.Errorf("You can't load the flvstreaming plugin on a service not of role reverse_proxy.")
	}
	return flvHooks{}, nil
}

type flvHooks struct{}

// flvStart keys the request's start offset (Keep).
type flvStart struct{}

func (flvHooks) BackendClientAssigned(r *plugin.Request, h *plugin.HeaderEdits) {
	n, ok := flvOffset(r.URI())
	if !ok {
		return
	}
	b := append([]byte("bytes="), strconv.FormatUint(n, 10)...)
	h.Set("Range", append(b, '-'))
	r.Keep(flvStart{}, n)
}

func (flvHooks) ModifyResponseHeaders(r *plugin.Request, status int, h *plugin.HeaderEdits) {
	if _, ok := r.Kept(flvStart{}).(uint64); !ok || status != 206 {
		return
	}
	r.SetStatus(200)
	h.Remove("Accept-Ranges")
	h.Remove("Content-Range")
	h.Set("Content-Type", []byte("video/x-flv"))
	if r.Resp != nil && r.Resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.AppendInt(nil, r.Resp.ContentLength+int64(len(flvHeader)), 10))
	}
	r.PrependBody(flvHeader)
}

// flvOffset returns N of a "/x.flv?start=N" URI: the path ends in .flv and
// the first start parameter of the query ("&" or ";" separated,
// percent-decoded, as URI::QueryParam reads it) is a number above 0. It
// allocates only for a parameter with '%' or '+' in it.
func flvOffset(uri []byte) (uint64, bool) {
	path, query, ok := bytes.Cut(uri, []byte("?"))
	if !ok || !bytes.HasSuffix(path, []byte(".flv")) {
		return 0, false
	}
	for len(query) > 0 {
		var kv []byte
		if i := bytes.IndexAny(query, "&;"); i >= 0 {
			kv, query = query[:i], query[i+1:]
		} else {
			kv, query = query, nil
		}
		k, v, _ := bytes.Cut(kv, []byte("="))
		if bytes.ContainsAny(kv, "%+") {
			key, err := url.QueryUnescape(string(k))
			if err != nil || key != "start" {
				continue
			}
			val, err := url.QueryUnescape(string(v))
			if err != nil {
				return 0, false
			}
			return flvNumber([]byte(val))
		}
		if string(k) == "start" {
			return flvNumber(v)
		}
	}
	return 0, false
}

// flvNumber parses a start offset: decimal digits only, above 0, below
// 2^63.
func flvNumber(v []byte) (uint64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' || n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n >= 1<<63 {
			return 0, false
		}
	}
	return n, n > 0
}
