package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// rewriteTransport sends the requests discordgo addresses to discord.com to
// another base URL (a test server or an egress proxy), and answers the
// gateway look-up itself when a gateway URL is configured. discordgo keeps
// its endpoints in package variables; rewriting here keeps them untouched.
type rewriteTransport struct {
	base    *url.URL // nil: keep discord.com
	gateway string   // "": ask the API
	next    http.RoundTripper
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != "discord.com" {
		return t.next.RoundTrip(req)
	}
	if t.gateway != "" && req.Method == http.MethodGet && isGatewayPath(req.URL.Path) {
		body, _ := json.Marshal(map[string]string{"url": t.gateway})
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"application/json"}},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       req,
		}, nil
	}
	if t.base == nil {
		return t.next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.URL.Scheme = t.base.Scheme
	r.URL.Host = t.base.Host
	r.URL.Path = strings.TrimSuffix(t.base.Path, "/") + req.URL.Path
	r.URL.RawPath = ""
	r.Host = t.base.Host
	return t.next.RoundTrip(r)
}

func isGatewayPath(p string) bool {
	return strings.HasSuffix(p, "/gateway") || strings.HasSuffix(p, "/gateway/bot")
}

// gatewayDialer bounds the gateway handshake: each new connection gets a
// deadline that lasts until READY or RESUMED arrives (cleared by release), so
// a gateway that accepts the connection and then says nothing cannot hang
// start-up or a reconnection. The WebSocket library clears deadlines after
// its HTTP upgrade; heldConn keeps this one until release.
type gatewayDialer struct {
	timeout time.Duration
	mu      sync.Mutex
	conn    *heldConn // the newest connection, deadline still held
}

func (d *gatewayDialer) dialer() *websocket.Dialer {
	return &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: d.timeout,
		NetDialContext:   d.dial,
	}
}

func (d *gatewayDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: d.timeout}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hc := &heldConn{Conn: c}
	hc.held.Store(true)
	_ = c.SetDeadline(time.Now().Add(d.timeout))
	d.mu.Lock()
	d.conn = hc
	d.mu.Unlock()
	return hc, nil
}

// release clears the handshake deadline once the session is established.
func (d *gatewayDialer) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		d.conn.held.Store(false)
		_ = d.conn.Conn.SetDeadline(time.Time{})
		d.conn = nil
	}
}

// heldConn ignores requests to clear its deadline while held.
type heldConn struct {
	net.Conn
	held atomic.Bool
}

func (c *heldConn) SetDeadline(t time.Time) error {
	if t.IsZero() && c.held.Load() {
		return nil
	}
	return c.Conn.SetDeadline(t)
}

func (c *heldConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() && c.held.Load() {
		return nil
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *heldConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() && c.held.Load() {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}
