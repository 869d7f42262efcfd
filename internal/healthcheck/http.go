package healthcheck

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBody caps how much of a response body HTTP_GET reads (and
// digests). keepalived reads to the end; a cap keeps a broken server from
// exhausting memory.
const DefaultMaxBody = 16 << 20

// StatusRange is an inclusive range of HTTP status codes (status_code
// 200-299); a single code has Min == Max.
type StatusRange struct {
	Min, Max int
}

// DefaultStatusCodes is keepalived's status_code when a url sets none.
var DefaultStatusCodes = []StatusRange{{200, 299}}

// URL is one url { } block of HTTP_GET / SSL_GET.
type URL struct {
	Path string // path, sent as is ("/", "/health?x=1")
	// Digest is the lower- or upper-case hex MD5 of the response body, as
	// keepalived's genhash prints it; empty for none.
	Digest string
	// StatusCodes accepted; nil means DefaultStatusCodes.
	StatusCodes []StatusRange
	// VirtualHost overrides the checker's for the Host header.
	VirtualHost string
	// Regex must match the body (RE2 syntax, not PCRE), or must not
	// match when RegexNoMatch.
	Regex        string
	RegexNoMatch bool
}

// HTTPOptions configure HTTP_GET (TLS false) or SSL_GET (TLS true).
type HTTPOptions struct {
	ConnOptions
	TLS bool
	// HTTPProtocol is http_protocol: "1.0" (the default), "1.0C" (1.0 with
	// Connection: close) or "1.1" (which always sends Connection: close).
	HTTPProtocol string
	// VirtualHost is the Host header (and the default SNI name); empty
	// means the connect address.
	VirtualHost string
	// EnableSNI sends SNI: SNIName, else the virtual host.
	EnableSNI bool
	SNIName   string
	// TLSConfig, if set, is cloned for SSL_GET (the SSL { ca certificate
	// key } block). Nil means keepalived's default: no verification of
	// the server certificate.
	TLSConfig *tls.Config
	// MaxBody caps the body read; 0 means DefaultMaxBody.
	MaxBody int64
	URLs    []URL
}

type compiledURL struct {
	URL
	digest []byte
	re     *regexp.Regexp
}

// HTTP is keepalived's HTTP_GET and SSL_GET. Every url is fetched on its
// own connection each check; all must pass.
type HTTP struct {
	opts HTTPOptions
	urls []compiledURL
}

// NewHTTP validates opts and returns an HTTP_GET / SSL_GET checker.
func NewHTTP(opts HTTPOptions) (*HTTP, error) {
	kind := "HTTP_GET"
	if opts.TLS {
		kind = "SSL_GET"
	}
	var errs []error
	if err := opts.validate(kind, true); err != nil {
		errs = append(errs, err)
	}
	switch opts.HTTPProtocol {
	case "", "1.0", "1.0C", "1.0c", "1.1":
	default:
		errs = append(errs, fmt.Errorf("%w: %s: http_protocol %q: use 1.0, 1.0C or 1.1", ErrConfig, kind, opts.HTTPProtocol))
	}
	if len(opts.URLs) == 0 {
		errs = append(errs, fmt.Errorf("%w: %s: needs at least one url", ErrConfig, kind))
	}
	h := &HTTP{opts: opts}
	for i, u := range opts.URLs {
		cu := compiledURL{URL: u}
		if u.Path == "" || strings.ContainsAny(u.Path, " \r\n") {
			errs = append(errs, fmt.Errorf("%w: %s url %d: path %q must be non-empty, without spaces or line breaks", ErrConfig, kind, i+1, u.Path))
		}
		if u.Digest != "" {
			d, err := ParseDigest(u.Digest)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s url %d: %w", ErrConfig, kind, i+1, err))
			}
			cu.digest = d
		}
		for _, r := range u.StatusCodes {
			if r.Min < 100 || r.Max > 999 || r.Min > r.Max {
				errs = append(errs, fmt.Errorf("%w: %s url %d: status_code range %d-%d is not within 100-999", ErrConfig, kind, i+1, r.Min, r.Max))
			}
		}
		if u.Regex != "" {
			re, err := regexp.Compile(u.Regex)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s url %d: regex: %w", ErrConfig, kind, i+1, err))
			}
			cu.re = re
		}
		h.urls = append(h.urls, cu)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return h, nil
}

// ParseDigest decodes a digest as genhash prints it: 32 hex digits.
func ParseDigest(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != md5.Size {
		return nil, fmt.Errorf("digest %q: want 32 hex digits (an MD5 as genhash prints it)", s)
	}
	return b, nil
}

// ParseStatusCodes parses status_code arguments: codes and ranges
// separated by spaces or commas ("200", "200-299 400-499 503").
func ParseStatusCodes(s string) ([]StatusRange, error) {
	var out []StatusRange
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		min, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("status_code %q: not a number", f)
		}
		max := min
		if isRange {
			if max, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("status_code %q: not a range like 200-299", f)
			}
		}
		if min < 100 || max > 999 || min > max {
			return nil, fmt.Errorf("status_code %q: codes are 100-999 and a range runs low-high", f)
		}
		out = append(out, StatusRange{min, max})
	}
	if len(out) == 0 {
		return nil, errors.New("status_code: no codes given")
	}
	return out, nil
}

func statusOK(ranges []StatusRange, code int) bool {
	if ranges == nil {
		ranges = DefaultStatusCodes
	}
	for _, r := range ranges {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

// Check fetches every url in turn and fails on the first that fails.
func (h *HTTP) Check(ctx context.Context) Result {
	start := time.Now()
	var msgs []string
	for i := range h.urls {
		msg, err := h.fetch(ctx, &h.urls[i])
		if err != nil {
			return down(start, fmt.Errorf("GET %s: %w", h.urls[i].Path, err))
		}
		msgs = append(msgs, msg)
	}
	return up(start, strings.Join(msgs, "; "))
}

func (h *HTTP) host(u *compiledURL) string {
	vh := u.VirtualHost
	if vh == "" {
		vh = h.opts.VirtualHost
	}
	port := h.opts.ConnectPort
	if vh == "" {
		vh = h.opts.ConnectIP.Unmap().String()
		if h.opts.ConnectIP.Unmap().Is6() {
			vh = "[" + vh + "]"
		}
	}
	if (h.opts.TLS && port == 443) || (!h.opts.TLS && port == 80) {
		return vh
	}
	return vh + ":" + strconv.Itoa(int(port))
}

// request renders the request as keepalived sends it.
func (h *HTTP) request(u *compiledURL) string {
	var b strings.Builder
	proto := "HTTP/1.0"
	if h.opts.HTTPProtocol == "1.1" {
		proto = "HTTP/1.1"
	}
	fmt.Fprintf(&b, "GET %s %s\r\nUser-Agent: KeepAliveClient\r\nHost: %s\r\n", u.Path, proto, h.host(u))
	if p := h.opts.HTTPProtocol; p == "1.1" || strings.EqualFold(p, "1.0C") {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func (h *HTTP) fetch(ctx context.Context, u *compiledURL) (string, error) {
	conn, err := h.opts.dial(ctx, "tcp")
	if err != nil {
		return "", err
	}
	defer conn.Close()
	dl := deadline(ctx, h.opts.timeout())
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if h.opts.TLS {
		tc := tls.Client(conn, h.tlsConfig(u))
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", classify(fmt.Errorf("TLS handshake: %w", err))
		}
		conn = tc
	}
	if _, err := io.WriteString(conn, h.request(u)); err != nil {
		return "", classify(fmt.Errorf("send request: %w", err))
	}
	msg, err := evaluate(conn, u, h.maxBody())
	return msg, classify(err)
}

func (h *HTTP) maxBody() int64 {
	if h.opts.MaxBody > 0 {
		return h.opts.MaxBody
	}
	return DefaultMaxBody
}

func (h *HTTP) tlsConfig(u *compiledURL) *tls.Config {
	var c *tls.Config
	if h.opts.TLSConfig != nil {
		c = h.opts.TLSConfig.Clone()
	} else {
		c = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // keepalived's SSL_GET does not verify without a ca
	}
	if h.opts.EnableSNI {
		name := h.opts.SNIName
		if name == "" {
			name = u.VirtualHost
		}
		if name == "" {
			name = h.opts.VirtualHost
		}
		c.ServerName = name
	} else if c.ServerName == "" && !c.InsecureSkipVerify {
		// Verification needs a name even when none is sent as SNI.
		c.ServerName = h.opts.ConnectIP.Unmap().String()
	}
	return c
}

// evaluate reads one HTTP response from r and judges it against u: status
// code, then digest (MD5 of the decoded body), then regex.
func evaluate(r io.Reader, u *compiledURL, maxBody int64) (string, error) {
	br := bufio.NewReader(r)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return "", fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	if !statusOK(u.StatusCodes, resp.StatusCode) {
		return "", fmt.Errorf("%w: status %d not in %s", ErrUnexpected, resp.StatusCode, rangesString(u.StatusCodes))
	}
	if u.digest == nil && u.re == nil {
		// keepalived still reads the body; a short read is harmless here.
		return "HTTP " + strconv.Itoa(resp.StatusCode), nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return "", fmt.Errorf("%w: body larger than %d bytes", ErrUnexpected, maxBody)
	}
	if u.digest != nil {
		sum := md5.Sum(body)
		if string(sum[:]) != string(u.digest) {
			return "", fmt.Errorf("%w: digest %x, want %x", ErrUnexpected, sum, u.digest)
		}
	}
	if u.re != nil {
		if m := u.re.Match(body); m == u.RegexNoMatch {
			if m {
				return "", fmt.Errorf("%w: body matches regex %q (regex_no_match)", ErrUnexpected, u.Regex)
			}
			return "", fmt.Errorf("%w: body does not match regex %q", ErrUnexpected, u.Regex)
		}
	}
	return "HTTP " + strconv.Itoa(resp.StatusCode), nil
}

// Digest returns the digest keepalived's genhash prints for body: the
// lower-case hex MD5.
func Digest(body []byte) string {
	s := md5.Sum(body)
	return hex.EncodeToString(s[:])
}

func rangesString(rs []StatusRange) string {
	if rs == nil {
		rs = DefaultStatusCodes
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		if r.Min == r.Max {
			parts[i] = strconv.Itoa(r.Min)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.Min, r.Max)
		}
	}
	return strings.Join(parts, ",")
}
