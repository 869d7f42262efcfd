package healthcheck

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const body = "hello from the realserver\n"

func httpServer(t *testing.T, tlsOn bool) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		fmt.Fprint(w, body)
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/unavailable", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	if tlsOn {
		srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			rec.setSNI(h.ServerName)
			return nil, nil
		}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, rec
}

type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	sni  []string
}

func (r *recorder) add(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

func (r *recorder) setSNI(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sni = append(r.sni, s)
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return nil
	}
	return r.reqs[len(r.reqs)-1]
}

func TestHTTP(t *testing.T) {
	srv, _ := httpServer(t, false)
	conn := connTo(t, srv.Listener.Addr())
	tests := []struct {
		name string
		opts HTTPOptions
		up   bool
	}{
		{"status default", HTTPOptions{URLs: []URL{{Path: "/"}}}, true},
		{"404 not in 200-299", HTTPOptions{URLs: []URL{{Path: "/missing"}}}, false},
		{"404 accepted", HTTPOptions{URLs: []URL{{Path: "/missing", StatusCodes: []StatusRange{{200, 299}, {404, 404}}}}}, true},
		{"503 range", HTTPOptions{URLs: []URL{{Path: "/unavailable", StatusCodes: []StatusRange{{500, 599}}}}}, true},
		{"digest ok", HTTPOptions{URLs: []URL{{Path: "/", Digest: Digest([]byte(body))}}}, true},
		{"digest upper case", HTTPOptions{URLs: []URL{{Path: "/", Digest: strings.ToUpper(Digest([]byte(body)))}}}, true},
		{"digest mismatch", HTTPOptions{URLs: []URL{{Path: "/", Digest: Digest([]byte("other"))}}}, false},
		{"regex", HTTPOptions{URLs: []URL{{Path: "/", Regex: "realserver$"}}}, false}, // no (?m): $ is end of text after \n
		{"regex multiline", HTTPOptions{URLs: []URL{{Path: "/", Regex: "(?m)realserver$"}}}, true},
		{"regex no match", HTTPOptions{URLs: []URL{{Path: "/", Regex: "hello", RegexNoMatch: true}}}, false},
		{"regex no match passes", HTTPOptions{URLs: []URL{{Path: "/", Regex: "goodbye", RegexNoMatch: true}}}, true},
		{"all urls", HTTPOptions{URLs: []URL{{Path: "/"}, {Path: "/missing"}}}, false},
		{"http 1.1", HTTPOptions{HTTPProtocol: "1.1", URLs: []URL{{Path: "/"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.ConnOptions = conn
			c, err := NewHTTP(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background())
			if r.Up != tt.up {
				t.Fatalf("up = %v, want %v: %v", r.Up, tt.up, r)
			}
			if !r.Up && r.Err == nil {
				t.Fatal("down without an error")
			}
		})
	}
}

func TestHTTPRequest(t *testing.T) {
	srv, rec := httpServer(t, false)
	c, err := NewHTTP(HTTPOptions{ConnOptions: connTo(t, srv.Listener.Addr()), VirtualHost: "www.example.org", URLs: []URL{{Path: "/a?b=c"}, {Path: "/", VirtualHost: "other.example.org"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Only check the first URL's request here.
	c.urls = c.urls[:1]
	mustUp(t, c.Check(context.Background()))
	r := rec.last()
	port := srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]
	if r.Host != "www.example.org:"+port || r.Proto != "HTTP/1.0" || r.UserAgent() != "KeepAliveClient" || r.URL.RequestURI() != "/a?b=c" {
		t.Fatalf("request: host %q proto %q agent %q uri %q", r.Host, r.Proto, r.UserAgent(), r.URL.RequestURI())
	}
	c.urls = []compiledURL{{URL: URL{Path: "/", VirtualHost: "other.example.org"}}}
	mustUp(t, c.Check(context.Background()))
	if h := rec.last().Host; !strings.HasPrefix(h, "other.example.org:") {
		t.Fatalf("url virtualhost: Host %q", h)
	}
}

func TestHTTPTimeout(t *testing.T) {
	srv, _ := httpServer(t, false)
	conn := connTo(t, srv.Listener.Addr())
	conn.Timeout = 200 * time.Millisecond
	c, err := NewHTTP(HTTPOptions{ConnOptions: conn, URLs: []URL{{Path: "/slow"}}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustDown(t, c.Check(context.Background()), ErrTimeout)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %s", d)
	}
}

func TestSSLGet(t *testing.T) {
	srv, rec := httpServer(t, true)
	conn := connTo(t, srv.Listener.Addr())
	c, err := NewHTTP(HTTPOptions{ConnOptions: conn, TLS: true, EnableSNI: true, VirtualHost: "vh.example.org",
		URLs: []URL{{Path: "/", Digest: Digest([]byte(body))}}})
	if err != nil {
		t.Fatal(err)
	}
	mustUp(t, c.Check(context.Background()))
	if len(rec.sni) != 1 || rec.sni[0] != "vh.example.org" {
		t.Fatalf("SNI = %q, want vh.example.org", rec.sni)
	}
	c, _ = NewHTTP(HTTPOptions{ConnOptions: conn, TLS: true, EnableSNI: true, SNIName: "sni.example.org", URLs: []URL{{Path: "/"}}})
	mustUp(t, c.Check(context.Background()))
	if rec.sni[1] != "sni.example.org" {
		t.Fatalf("SNI = %q, want sni.example.org", rec.sni[1])
	}
	c, _ = NewHTTP(HTTPOptions{ConnOptions: conn, TLS: true, URLs: []URL{{Path: "/"}}})
	mustUp(t, c.Check(context.Background()))
	if rec.sni[2] != "" {
		t.Fatalf("SNI sent without enable_sni: %q", rec.sni[2])
	}
	// Verifying against the test server's CA works; against an empty pool fails.
	c, _ = NewHTTP(HTTPOptions{ConnOptions: conn, TLS: true, TLSConfig: &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "example.com"}, URLs: []URL{{Path: "/"}}})
	mustUp(t, c.Check(context.Background()))
	c, _ = NewHTTP(HTTPOptions{ConnOptions: conn, TLS: true, TLSConfig: &tls.Config{ServerName: "example.com"}, URLs: []URL{{Path: "/"}}})
	mustDown(t, c.Check(context.Background()), nil)
	// Plain HTTP against TLS fails.
	c, _ = NewHTTP(HTTPOptions{ConnOptions: conn, URLs: []URL{{Path: "/"}}})
	mustDown(t, c.Check(context.Background()), nil)
}

func TestNewHTTPErrors(t *testing.T) {
	conn := ConnOptions{ConnectIP: loopback, ConnectPort: 80}
	for _, o := range []HTTPOptions{
		{ConnOptions: conn},
		{ConnOptions: conn, URLs: []URL{{Path: ""}}},
		{ConnOptions: conn, URLs: []URL{{Path: "/", Digest: "xyz"}}},
		{ConnOptions: conn, URLs: []URL{{Path: "/", Regex: "("}}},
		{ConnOptions: conn, URLs: []URL{{Path: "/", StatusCodes: []StatusRange{{300, 200}}}}},
		{ConnOptions: conn, HTTPProtocol: "2", URLs: []URL{{Path: "/"}}},
	} {
		if _, err := NewHTTP(o); err == nil {
			t.Errorf("NewHTTP(%+v) succeeded", o)
		}
	}
}

func TestParseStatusCodes(t *testing.T) {
	tests := []struct {
		in   string
		want []StatusRange
		ok   bool
	}{
		{"200", []StatusRange{{200, 200}}, true},
		{"200-299 400-499 503 505", []StatusRange{{200, 299}, {400, 499}, {503, 503}, {505, 505}}, true},
		{"200,301", []StatusRange{{200, 200}, {301, 301}}, true},
		{"", nil, false},
		{"abc", nil, false},
		{"299-200", nil, false},
		{"99", nil, false},
		{"200-", nil, false},
		{"1000", nil, false},
	}
	for _, tt := range tests {
		got, err := ParseStatusCodes(tt.in)
		if (err == nil) != tt.ok || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseStatusCodes(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestEvaluateChunked(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	u := &compiledURL{}
	u.digest, _ = ParseDigest(Digest([]byte("hello")))
	if _, err := evaluate(strings.NewReader(raw), u, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := evaluate(strings.NewReader(raw), u, 3); err == nil {
		t.Fatal("body over the limit accepted")
	}
}

func FuzzParseStatusCodes(f *testing.F) {
	for _, s := range []string{"200", "200-299 400-499", "1-2-3", "", "200,,300", "999-100"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseStatusCodes(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.Min < 100 || r.Max > 999 || r.Min > r.Max {
				t.Fatalf("%q: bad range %v", s, r)
			}
			if !statusOK(rs, r.Min) || !statusOK(rs, r.Max) {
				t.Fatalf("%q: %v not accepted", s, r)
			}
		}
	})
}

func FuzzEvaluate(f *testing.F) {
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nbody"), []byte("body"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyextra"), []byte("body"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"), []byte("body"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\n\r\n"), []byte(""))
	f.Add([]byte("garbage"), []byte("x"))
	f.Fuzz(func(t *testing.T, raw, want []byte) {
		u := &compiledURL{}
		u.digest, _ = ParseDigest(Digest(want))
		msg, err := evaluate(bytes.NewReader(raw), u, 1<<16)
		if err == nil && msg == "" {
			t.Fatal("passed without a message")
		}
		// A plain HTTP/1.0 response whose body is want must pass.
		ok := append([]byte("HTTP/1.0 200 OK\r\n\r\n"), want...)
		if _, err := evaluate(bytes.NewReader(ok), u, 1<<16); err != nil {
			t.Fatalf("digest of own body rejected: %v", err)
		}
	})
}
