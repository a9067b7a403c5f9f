package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/vigil-ops/vigil/pkg/apidocs"
)

// DefaultRESTMaxBytes bounds a REST request's body unless LimitREST says
// otherwise: the largest request of the API (an app with its
// configuration and secrets) is far smaller.
const DefaultRESTMaxBytes = 1 << 20

// Authorizer decides, before a REST call's body is read, whether the
// caller of r may call the RPC method (full name, "/pkg.Service/Method")
// the route maps to; params are the route's path parameters. It answers
// a gRPC status error (Unauthenticated, PermissionDenied...) to refuse.
type Authorizer func(r *http.Request, method string, params map[string]string) error

// AuthorizeREST makes every REST call pass fn before grpc-gateway decodes
// its body, so that a caller who may not call an RPC learns that (403)
// and not what is wrong with their body (400). The gRPC interceptors
// still run on the call itself. Call before Run.
func (s *Server) AuthorizeREST(fn Authorizer) { s.authorize = fn }

// LimitREST bounds a REST request's body to n bytes (DefaultRESTMaxBytes
// when n is 0): a larger one is answered 413 and never read whole. The
// webhooks registered with Handle keep their own limits. Call before Run.
func (s *Server) LimitREST(n int64) {
	if n > 0 {
		s.restMaxBytes = n
	}
}

// capREST bounds the body of every /api/v1/ request, whatever reads it.
func (s *Server) capREST(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &cappedBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.restMaxBytes), limit: s.restMaxBytes}
	}
	s.rest.ServeHTTP(w, r)
}

// cappedBody is a body read through http.MaxBytesReader that remembers
// when it was cut, so that the error grpc-gateway makes of the failed
// decode (400) is answered 413.
type cappedBody struct {
	io.ReadCloser
	limit    int64
	tooLarge bool
}

func (b *cappedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		b.tooLarge = true
	}
	return n, err
}

// tooLarge answers 413 for a request whose body is over the limit:
// declared so (Content-Length), or found so while it was read.
func tooLarge(w http.ResponseWriter, r *http.Request) bool {
	b, ok := r.Body.(*cappedBody)
	if !ok || (!b.tooLarge && r.ContentLength <= b.limit) {
		return false
	}
	// The rest of the body is not read: the connection cannot be reused.
	w.Header().Set("Connection", "close")
	WriteProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over %d bytes, the largest this API takes (VIGIL_REST_MAX_BYTES)", b.limit))
	return true
}

// restMiddleware runs on every REST route grpc-gateway matched, before
// its handler decodes anything: the caller's authorisation for the
// route's RPC first, then the body's declared size.
func (s *Server) restMiddleware(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if s.authorize != nil {
			method, err := restMethod(r)
			if err != nil {
				// A route of the contracts the table does not know is
				// Vigil's bug; nobody may call it until it is fixed.
				s.opts.Logger.ErrorContext(r.Context(), "REST route without an RPC", "error", err)
				WriteProblem(w, http.StatusInternalServerError, "this route has no access policy: nobody may call it")
				return
			}
			if err := s.authorize(r, method, params); err != nil {
				// Logged once, here: the call never reaches the gRPC
				// server, whose interceptor logs the others.
				s.opts.Logger.InfoContext(r.Context(), "rpc refused", "method", method, "code", status.Code(err).String(), "error", status.Convert(err).Message())
				problemErrorHandler(r.Context(), nil, nil, w, r, err)
				return
			}
		}
		if tooLarge(w, r) {
			s.opts.Logger.InfoContext(r.Context(), "request body too large", "method", r.Method, "path", r.URL.Path, "content_length", r.ContentLength)
			return
		}
		next(w, r, params)
	}
}

// restMethod returns the full name of the RPC the REST route of r maps
// to.
func restMethod(r *http.Request) (string, error) {
	pat, ok := runtime.HTTPPattern(r.Context())
	if !ok {
		return "", fmt.Errorf("%s %s: no route pattern", r.Method, r.URL.Path)
	}
	routes, err := restRoutes()
	if err != nil {
		return "", err
	}
	key := r.Method + " " + routeKey(pat.String())
	method, ok := routes[key]
	if !ok {
		return "", fmt.Errorf("%s (%s %s): not in the OpenAPI document", key, r.Method, r.URL.Path)
	}
	return method, nil
}

// routeKeys remembers routeKey per pattern: the patterns are the few
// grpc-gateway registered, and every REST call (alerts in a storm
// included) asks.
var routeKeys sync.Map

// routeKey is a route pattern with its path variables as "*".
func routeKey(pattern string) string {
	if k, ok := routeKeys.Load(pattern); ok {
		return k.(string)
	}
	k := placeholder.ReplaceAllString(pattern, "*")
	routeKeys.Store(pattern, k)
	return k
}

// placeholder is a path variable, as a route pattern ("{name=*}") or the
// OpenAPI document ("{name}") writes it.
var placeholder = regexp.MustCompile(`\{[^}]*\}`)

// restRoutes maps "VERB /path/*:verb" of every REST route to its RPC's
// full name. It is read from the OpenAPI document, which `make generate`
// makes from the same HTTP rules as the routes (proto/vigil/http.yaml);
// its operation ids ("AppService_CreateApp") name the service, whose
// package comes from the registered descriptors.
var restRoutes = sync.OnceValues(func() (map[string]string, error) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(apidocs.OpenAPI, &doc); err != nil {
		return nil, fmt.Errorf("read the OpenAPI document: %w", err)
	}
	services := map[string][]string{} // short name -> full names
	protoregistry.GlobalFiles.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		for i := range f.Services().Len() {
			sd := f.Services().Get(i)
			services[string(sd.Name())] = append(services[string(sd.Name())], string(sd.FullName()))
		}
		return true
	})
	routes := map[string]string{}
	for path, ops := range doc.Paths {
		for verb, op := range ops {
			svc, rpc, ok := strings.Cut(op.OperationID, "_")
			if !ok || len(services[svc]) != 1 {
				return nil, fmt.Errorf("operation %s of %s %s: want Service_Method of exactly one registered service, found %v",
					op.OperationID, strings.ToUpper(verb), path, services[svc])
			}
			routes[strings.ToUpper(verb)+" "+placeholder.ReplaceAllString(path, "*")] = "/" + services[svc][0] + "/" + rpc
		}
	}
	return routes, nil
})
