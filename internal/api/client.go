package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// Client is a [Director] that talks to govsd over its unix socket.
type Client struct {
	socket string
	hc     *http.Client
}

var _ Director = (*Client)(nil)

// NewClient returns a client for the govsd listening on socket. It does
// not connect until the first call.
func NewClient(socket string) *Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, unreachable(socket, err)
			}
			return c, nil
		},
		MaxIdleConns:       2,
		DisableCompression: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Socket returns the socket path c connects to.
func (c *Client) Socket() string { return c.socket }

// CloseIdleConnections closes the client's idle connections to govsd.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// unreachableError is what a failed dial becomes: it names the socket, the
// cause and what to do.
type unreachableError struct {
	socket string
	err    error
}

func unreachable(socket string, err error) error { return &unreachableError{socket: socket, err: err} }

func (e *unreachableError) Error() string {
	hint := "is govsd running? Start it, or point --socket or " + SocketEnv + " at its socket"
	if errors.Is(e.err, fs.ErrPermission) {
		hint = "run as root, or as a member of the socket's group"
	}
	return fmt.Sprintf("govsd is unreachable at %s: %v; %s", e.socket, e.err, hint)
}

func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }
func (e *unreachableError) Unwrap() error        { return e.err }

// do sends a request with body in (nil for none) and decodes a successful
// response into out (nil to ignore it).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://govsd"+path, body)
	if err != nil {
		return fmt.Errorf("build %s %s request: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *unreachableError
		if errors.As(err, &ue) {
			return ue
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s on govsd at %s: %w", method, path, c.socket, ctx.Err())
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s %s on govsd at %s: %w", method, path, c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode govsd's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Code == "" {
		return &Error{Status: resp.StatusCode, Code: CodeInternal,
			Message: fmt.Sprintf("govsd answered %s with a body that is not an API error: %.200q", resp.Status, b)}
	}
	e := &Error{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message}
	if eb.OpIndex != nil {
		return &BatchError{Index: *eb.OpIndex, Op: eb.Op, Err: e}
	}
	return e
}

// Info implements [Director].
func (c *Client) Info(ctx context.Context) (Info, error) {
	var v Info
	err := c.do(ctx, http.MethodGet, "/v1/info", nil, &v)
	return v, err
}

// AddService implements [Director].
func (c *Client) AddService(ctx context.Context, svc ipvs.Service) error {
	return c.do(ctx, http.MethodPost, "/v1/services", svc, nil)
}

// EditService implements [Director].
func (c *Client) EditService(ctx context.Context, svc ipvs.Service) error {
	p, err := servicePath(svc.ServiceKey)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, p, svc, nil)
}

// DelService implements [Director].
func (c *Client) DelService(ctx context.Context, k ipvs.ServiceKey) error {
	p, err := servicePath(k)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

// Flush implements [Director].
func (c *Client) Flush(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/v1/services", nil, nil)
}

// AddDest implements [Director].
func (c *Client) AddDest(ctx context.Context, k ipvs.ServiceKey, d ipvs.Destination) error {
	p, err := servicePath(k)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p+"/dests", d, nil)
}

// EditDest implements [Director].
func (c *Client) EditDest(ctx context.Context, k ipvs.ServiceKey, d ipvs.Destination) error {
	p, err := destPath(k, d.Key())
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, p, d, nil)
}

// DelDest implements [Director].
func (c *Client) DelDest(ctx context.Context, k ipvs.ServiceKey, d ipvs.DestKey) error {
	p, err := destPath(k, d)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

func destPath(k ipvs.ServiceKey, d ipvs.DestKey) (string, error) {
	p, err := servicePath(k)
	if err != nil {
		return "", err
	}
	ds, err := FormatDestKey(d)
	if err != nil {
		return "", err
	}
	return p + "/dests/" + url.PathEscape(ds), nil
}

// Zero implements [Director].
func (c *Client) Zero(ctx context.Context, k *ipvs.ServiceKey) error {
	if k == nil {
		return c.do(ctx, http.MethodPost, "/v1/zero", nil, nil)
	}
	p, err := servicePath(*k)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, p+"/zero", nil, nil)
}

// Services implements [Director].
func (c *Client) Services(ctx context.Context) ([]ipvs.ServiceState, error) {
	var v []ipvs.ServiceState
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, &v)
	return v, err
}

// Service implements [Director].
func (c *Client) Service(ctx context.Context, k ipvs.ServiceKey) (ipvs.ServiceState, error) {
	var v ipvs.ServiceState
	p, err := servicePath(k)
	if err != nil {
		return v, err
	}
	err = c.do(ctx, http.MethodGet, p, nil, &v)
	return v, err
}

// Conns implements [Director].
func (c *Client) Conns(ctx context.Context) ([]conn.Info, error) {
	var v []conn.Info
	err := c.do(ctx, http.MethodGet, "/v1/conns", nil, &v)
	return v, err
}

// Timeouts implements [Director].
func (c *Client) Timeouts(ctx context.Context) (conn.Timeouts, error) {
	var v conn.Timeouts
	err := c.do(ctx, http.MethodGet, "/v1/timeouts", nil, &v)
	return v, err
}

// SetTimeouts implements [Director].
func (c *Client) SetTimeouts(ctx context.Context, t conn.Timeouts) error {
	return c.do(ctx, http.MethodPut, "/v1/timeouts", t, nil)
}

// Apply implements [Director] with one request, POST /v1/batch, of at
// most [MaxBatchOps] ops. An op whose service key has no form in the API
// (see [FormatServiceKey]) is refused here, as the single-change methods
// refuse it, after the ops before it are applied.
func (c *Client) Apply(ctx context.Context, ops []Op) (BatchResult, error) {
	if len(ops) > MaxBatchOps {
		return BatchResult{}, fmt.Errorf("apply a batch of %d ops: more than %d, split it: %w", len(ops), MaxBatchOps, ipvs.ErrInvalid)
	}
	for i := range ops {
		if err := ops[i].Check(); err != nil {
			return c.applyBefore(ctx, ops, i, err)
		}
		switch ops[i].Op {
		case OpDelService, OpAddDest, OpEditDest, OpDelDest:
			if _, err := FormatServiceKey(ops[i].ServiceKey()); err != nil {
				return c.applyBefore(ctx, ops, i, err)
			}
		}
	}
	return c.apply(ctx, ops)
}

// applyBefore applies ops[:i] and, if they all were, reports op i as
// failed with err.
func (c *Client) applyBefore(ctx context.Context, ops []Op, i int, err error) (BatchResult, error) {
	if res, err := c.apply(ctx, ops[:i]); err != nil {
		return res, err
	}
	return BatchResult{Applied: i}, &BatchError{Index: i, Op: ops[i].Op, Err: err}
}

func (c *Client) apply(ctx context.Context, ops []Op) (BatchResult, error) {
	if len(ops) == 0 {
		return BatchResult{}, nil
	}
	var res BatchResult
	err := c.do(ctx, http.MethodPost, "/v1/batch", ops, &res)
	var be *BatchError
	if errors.As(err, &be) {
		res.Applied = be.Index
	}
	return res, err
}

// StartDaemon implements [Director].
func (c *Client) StartDaemon(ctx context.Context, d SyncDaemon) error {
	return c.do(ctx, http.MethodPost, "/v1/daemons", d, nil)
}

// StopDaemon implements [Director].
func (c *Client) StopDaemon(ctx context.Context, state string) error {
	if state == "" {
		return fmt.Errorf("stop sync daemon: the state (master or backup) is empty: %w", ipvs.ErrInvalid)
	}
	return c.do(ctx, http.MethodDelete, "/v1/daemons/"+url.PathEscape(state), nil, nil)
}

// Daemons implements [Director].
func (c *Client) Daemons(ctx context.Context) ([]SyncDaemon, error) {
	var v []SyncDaemon
	err := c.do(ctx, http.MethodGet, "/v1/daemons", nil, &v)
	return v, err
}

// isRefused reports whether err is a refused connection: a socket file
// with nobody listening.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
