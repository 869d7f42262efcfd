package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/govs/govs/internal/conn"
	"github.com/govs/govs/internal/ipvs"
)

// maxBody bounds request bodies; the largest legitimate one is a Service.
const maxBody = 1 << 20

// maxBatchBody bounds a batch's body: MaxBatchOps ops of a few hundred
// bytes each, with room to spare.
const maxBatchBody = 64 << 20

// NewServer returns the HTTP handler that exposes d. Routes are listed in
// the package documentation and in openapi.yaml.
func NewServer(d Director, log *slog.Logger, opts ...ServerOption) http.Handler {
	s := &server{d: d, log: log}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", s.info)
	mux.HandleFunc("GET /v1/services", s.services)
	mux.HandleFunc("POST /v1/services", s.addService)
	mux.HandleFunc("DELETE /v1/services", s.flush)
	// Service keys span two or three path segments ("tcp/10.0.0.1:80",
	// "fwmark/7/ipv4"), more than one ServeMux wildcard can match, so
	// everything below /v1/services/ is routed by servicesSubtree.
	mux.HandleFunc("/v1/services/", s.servicesSubtree)
	mux.HandleFunc("POST /v1/batch", s.batch)
	mux.HandleFunc("POST /v1/zero", s.zeroAll)
	mux.HandleFunc("GET /v1/timeouts", s.timeouts)
	mux.HandleFunc("PUT /v1/timeouts", s.setTimeouts)
	mux.HandleFunc("GET /v1/conns", s.conns)
	mux.HandleFunc("GET /v1/daemons", s.daemons)
	mux.HandleFunc("POST /v1/daemons", s.startDaemon)
	mux.HandleFunc("DELETE /v1/daemons/{state}", s.stopDaemon)
	mux.HandleFunc("GET /v1/health", s.healthStatus)
	mux.HandleFunc("POST /v1/reload", s.reload)
	return s.withErrors(mux)
}

type server struct {
	d        Director
	log      *slog.Logger
	health   HealthReader
	reloader Reloader
}

// withErrors turns ServeMux's plain-text 404 and 405 answers into JSON
// errors.
func (s *server) withErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route matched. Let ServeMux's own handler say whether the
		// path exists for other methods (405 with Allow) or not at all.
		var rec statusRecorder
		h.ServeHTTP(&rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			allow := rec.Header().Get("Allow")
			w.Header().Set("Allow", allow)
			s.writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
				fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, allow))
			return
		}
		s.notFound(w, r)
	})
}

// statusRecorder keeps the status and headers a handler writes and drops
// the body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header {
	if s.header == nil {
		s.header = http.Header{}
	}
	return s.header
}

func (s *statusRecorder) WriteHeader(status int) { s.status = status }

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no route %s %s: see openapi.yaml for the API", r.Method, r.URL.Path))
}

func (s *server) info(w http.ResponseWriter, r *http.Request) {
	v, err := s.d.Info(r.Context())
	s.reply(w, r, http.StatusOK, v, err)
}

func (s *server) services(w http.ResponseWriter, r *http.Request) {
	v, err := s.d.Services(r.Context())
	if v == nil {
		v = []ipvs.ServiceState{}
	}
	s.reply(w, r, http.StatusOK, v, err)
}

func (s *server) addService(w http.ResponseWriter, r *http.Request) {
	var svc ipvs.Service
	if !s.decode(w, r, &svc) {
		return
	}
	fillFamily(&svc.ServiceKey)
	s.reply(w, r, http.StatusCreated, nil, s.d.AddService(r.Context(), svc))
}

func (s *server) flush(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, http.StatusNoContent, nil, s.d.Flush(r.Context()))
}

// batch applies a list of ops. A batch that stops at an op answers that
// op's error, with its index in op_index.
func (s *server) batch(w http.ResponseWriter, r *http.Request) {
	var ops []Op
	if !s.decodeMax(w, r, &ops, maxBatchBody) {
		return
	}
	if len(ops) > MaxBatchOps {
		s.writeError(w, r, http.StatusBadRequest, CodeInvalid,
			fmt.Sprintf("a batch of %d ops is more than %d: split it", len(ops), MaxBatchOps))
		return
	}
	for i := range ops {
		if ops[i].Service != nil {
			fillFamily(&ops[i].Service.ServiceKey)
		}
	}
	res, err := s.d.Apply(r.Context(), ops)
	var be *BatchError
	if errors.As(err, &be) {
		code, status := codeOf(be.Err)
		s.log.Debug("api batch stopped", "applied", res.Applied, "op_index", be.Index, "op", be.Op, "code", code, "err", be.Err)
		idx := be.Index
		s.writeJSON(w, r, status, ErrorBody{Code: code, Message: be.Err.Error(), OpIndex: &idx, Op: be.Op})
		return
	}
	s.reply(w, r, http.StatusOK, res, err)
}

func (s *server) zeroAll(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, http.StatusNoContent, nil, s.d.Zero(r.Context(), nil))
}

func (s *server) timeouts(w http.ResponseWriter, r *http.Request) {
	v, err := s.d.Timeouts(r.Context())
	s.reply(w, r, http.StatusOK, v, err)
}

func (s *server) setTimeouts(w http.ResponseWriter, r *http.Request) {
	var t conn.Timeouts
	if !s.decode(w, r, &t) {
		return
	}
	s.reply(w, r, http.StatusNoContent, nil, s.d.SetTimeouts(r.Context(), t))
}

func (s *server) conns(w http.ResponseWriter, r *http.Request) {
	v, err := s.d.Conns(r.Context())
	if v == nil {
		v = []conn.Info{}
	}
	s.reply(w, r, http.StatusOK, v, err)
}

func (s *server) daemons(w http.ResponseWriter, r *http.Request) {
	v, err := s.d.Daemons(r.Context())
	if v == nil {
		v = []SyncDaemon{}
	}
	s.reply(w, r, http.StatusOK, v, err)
}

func (s *server) startDaemon(w http.ResponseWriter, r *http.Request) {
	var sd SyncDaemon
	if !s.decode(w, r, &sd) {
		return
	}
	s.reply(w, r, http.StatusCreated, nil, s.d.StartDaemon(r.Context(), sd))
}

func (s *server) stopDaemon(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, http.StatusNoContent, nil, s.d.StopDaemon(r.Context(), r.PathValue("state")))
}

// servicesSubtree routes /v1/services/{key}[/dests[/{dest}]|/zero].
func (s *server) servicesSubtree(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/services/")
	k, tail, err := splitServicePath(rest)
	if err != nil {
		s.reply(w, r, 0, nil, err)
		return
	}
	ctx := r.Context()
	route := func(allowed ...string) bool {
		for _, m := range allowed {
			if r.Method == m {
				return true
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			fmt.Sprintf("%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
		return false
	}
	switch {
	case len(tail) == 0:
		if !route(http.MethodGet, http.MethodPut, http.MethodDelete) {
			return
		}
		switch r.Method {
		case http.MethodGet:
			v, err := s.d.Service(ctx, k)
			s.reply(w, r, http.StatusOK, v, err)
		case http.MethodPut:
			var svc ipvs.Service
			if !s.decode(w, r, &svc) {
				return
			}
			if err := matchKey(&svc.ServiceKey, k); err != nil {
				s.reply(w, r, 0, nil, err)
				return
			}
			s.reply(w, r, http.StatusNoContent, nil, s.d.EditService(ctx, svc))
		case http.MethodDelete:
			s.reply(w, r, http.StatusNoContent, nil, s.d.DelService(ctx, k))
		}
	case len(tail) == 1 && tail[0] == "zero":
		if route(http.MethodPost) {
			s.reply(w, r, http.StatusNoContent, nil, s.d.Zero(ctx, &k))
		}
	case len(tail) == 1 && tail[0] == "dests":
		if !route(http.MethodPost) {
			return
		}
		var d ipvs.Destination
		if !s.decode(w, r, &d) {
			return
		}
		s.reply(w, r, http.StatusCreated, nil, s.d.AddDest(ctx, k, d))
	case len(tail) == 2 && tail[0] == "dests":
		dk, err := ParseDestKey(tail[1])
		if err != nil {
			s.reply(w, r, 0, nil, err)
			return
		}
		if !route(http.MethodPut, http.MethodDelete) {
			return
		}
		if r.Method == http.MethodDelete {
			s.reply(w, r, http.StatusNoContent, nil, s.d.DelDest(ctx, k, dk))
			return
		}
		var d ipvs.Destination
		if !s.decode(w, r, &d) {
			return
		}
		if !d.Addr.IsValid() {
			d.Addr, d.Port = dk.Addr, dk.Port
		} else if d.Key() != dk {
			s.reply(w, r, 0, nil, fmt.Errorf("destination %s in the body differs from %s in the path: a destination's address cannot be edited, delete and add it: %w",
				d.AddrPort(), tail[1], ipvs.ErrInvalid))
			return
		}
		s.reply(w, r, http.StatusNoContent, nil, s.d.EditDest(ctx, k, d))
	default:
		s.notFound(w, r)
	}
}

// fillFamily sets an address service's family from its address when the
// request left it out, as ipvsadm does.
func fillFamily(k *ipvs.ServiceKey) {
	if k.Family == ipvs.FamilyNone && !k.IsFWMark() && k.Addr.IsValid() {
		k.Family = ipvs.FamilyOf(k.Addr)
	}
}

// matchKey fills an empty key in a request body from the path, or checks
// that the body names the same service as the path.
func matchKey(body *ipvs.ServiceKey, path ipvs.ServiceKey) error {
	if *body == (ipvs.ServiceKey{}) {
		*body = path
		return nil
	}
	fillFamily(body)
	if body.IsFWMark() && body.FWMark == path.FWMark && body.Family == ipvs.FamilyNone {
		body.Family = path.Family
	}
	if *body != path {
		return fmt.Errorf("service %s in the body differs from %s in the path: a service's key cannot be edited, delete and add it: %w",
			body, path, ipvs.ErrInvalid)
	}
	return nil
}

// decode reads a JSON request body into v. It answers the request itself
// and returns false when the body is not acceptable.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	return s.decodeMax(w, r, v, maxBody)
}

// decodeMax is decode with a body of at most limit bytes.
func (s *server) decodeMax(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the body is empty")
		}
		s.writeError(w, r, http.StatusBadRequest, CodeInvalid, fmt.Sprintf("decode request body: %v", err))
		return false
	}
	return true
}

// reply writes v with status ok, or the error response for err.
func (s *server) reply(w http.ResponseWriter, r *http.Request, ok int, v any, err error) {
	if err != nil {
		code, status := codeOf(err)
		s.writeError(w, r, status, code, err.Error())
		return
	}
	if ok == http.StatusNoContent || v == nil {
		w.WriteHeader(ok)
		return
	}
	s.writeJSON(w, r, ok, v)
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	lvl := slog.LevelDebug
	if status >= 500 && code != CodeUnsupported {
		lvl = slog.LevelError
	}
	s.log.Log(r.Context(), lvl, "api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "code", code, "err", msg)
	s.writeJSON(w, r, status, ErrorBody{Code: code, Message: msg})
}

func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		s.log.Error("encode api response", "method", r.Method, "path", r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(ErrorBody{Code: CodeInternal, Message: fmt.Sprintf("encode response: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
