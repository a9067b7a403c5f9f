package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/generic"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/registry"
)

// SourceServer serves SourceService: the declared webhook sources, stored
// in the gateway's schema and served by the registry.
type SourceServer struct {
	gatewayv1.UnimplementedSourceServiceServer
	store    *postgres.Sources
	registry *registry.Registry
	log      *slog.Logger
}

// NewSourceServer serves the sources of store; reg is reloaded after
// every change, so this replica serves it at once (the others on their
// next poll).
func NewSourceServer(store *postgres.Sources, reg *registry.Registry, log *slog.Logger) *SourceServer {
	return &SourceServer{store: store, registry: reg, log: log}
}

// SourcePath is where a declared source's sender POSTs.
func SourcePath(name string) string { return "/api/v1/webhooks/sources/" + name }

func sourceStatus(err error) error {
	switch {
	case errors.Is(err, postgres.ErrSourceNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, postgres.ErrSourceExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, postgres.ErrNoKey), errors.Is(err, seal.ErrOpen):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return err
}

func sourcePB(d registry.Declared) *gatewayv1.Source {
	s := &gatewayv1.Source{
		Name: d.Name, Type: d.Type, Team: d.Team, Auth: d.Auth, HasSecret: d.HasSecret, Path: SourcePath(d.Name),
		CreateTime: tsOrNil(d.CreatedAt), UpdateTime: tsOrNil(d.UpdatedAt), CreatedBy: d.CreatedBy, UpdatedBy: d.UpdatedBy,
	}
	if m := d.Settings.Mapping; m != nil {
		s.Config = &gatewayv1.Source_Generic{Generic: &gatewayv1.GenericSource{Mapping: &gatewayv1.Mapping{
			Alerts: m.Alerts, Labels: m.Labels, Annotations: m.Annotations, Status: m.Status,
			StartsAt: m.StartsAt, EndsAt: m.EndsAt, GeneratorUrl: m.GeneratorURL,
		}}}
	}
	return s
}

func mappingOf(g *gatewayv1.GenericSource) *generic.Mapping {
	m := g.GetMapping()
	if m == nil {
		return nil
	}
	return &generic.Mapping{
		Alerts: m.GetAlerts(), Labels: m.GetLabels(), Annotations: m.GetAnnotations(), Status: m.GetStatus(),
		StartsAt: m.GetStartsAt(), EndsAt: m.GetEndsAt(), GeneratorURL: m.GetGeneratorUrl(),
	}
}

func declaredOf(s *gatewayv1.Source) registry.Declared {
	return registry.Declared{
		Name: s.GetName(), Type: s.GetType(), Team: s.GetTeam(), Auth: s.GetAuth(),
		Settings: registry.Settings{Mapping: mappingOf(s.GetGeneric())},
	}
}

// reload makes this replica serve what was just stored; a failure is
// logged (the poll tries again) and does not undo the change.
func (s *SourceServer) reload(ctx context.Context) {
	if err := s.registry.Load(ctx); err != nil {
		s.log.WarnContext(ctx, "declared sources not reloaded after a change", "error", err)
	}
}

// ListSources implements SourceService.
func (s *SourceServer) ListSources(ctx context.Context, _ *gatewayv1.ListSourcesRequest) (*gatewayv1.ListSourcesResponse, error) {
	ds, err := s.store.ListSources(ctx)
	if err != nil {
		return nil, err
	}
	out := &gatewayv1.ListSourcesResponse{}
	for _, d := range ds {
		out.Sources = append(out.Sources, sourcePB(d))
	}
	return out, nil
}

// GetSource implements SourceService.
func (s *SourceServer) GetSource(ctx context.Context, r *gatewayv1.GetSourceRequest) (*gatewayv1.GetSourceResponse, error) {
	d, err := s.store.GetSource(ctx, r.GetName())
	if err != nil {
		return nil, sourceStatus(err)
	}
	return &gatewayv1.GetSourceResponse{Source: sourcePB(d)}, nil
}

// CreateSource implements SourceService.
func (s *SourceServer) CreateSource(ctx context.Context, r *gatewayv1.CreateSourceRequest) (*gatewayv1.CreateSourceResponse, error) {
	d := declaredOf(r.GetSource())
	d.Secret = r.GetSecret()
	if err := registry.Check(d); err != nil {
		return nil, err
	}
	d.CreatedBy = caller(ctx).String()
	d, err := s.store.CreateSource(ctx, d)
	if err != nil {
		return nil, sourceStatus(err)
	}
	s.reload(ctx)
	return &gatewayv1.CreateSourceResponse{Source: sourcePB(d)}, nil
}

// updatableSource are the paths UpdateSource changes.
var updatableSource = []string{"team", "auth", "generic"}

// UpdateSource implements SourceService.
func (s *SourceServer) UpdateSource(ctx context.Context, r *gatewayv1.UpdateSourceRequest) (*gatewayv1.UpdateSourceResponse, error) {
	var bad server.BadRequestError
	if r.GetSource().GetName() == "" {
		bad.Add("source.name", "is required")
	}
	paths := map[string]bool{}
	for _, p := range r.GetUpdateMask().GetPaths() {
		if !slices.Contains(updatableSource, p) {
			bad.Addf("update_mask", "%q cannot be changed: want paths among %s", p, strings.Join(updatableSource, ", "))
			continue
		}
		paths[p] = true
	}
	if len(paths) == 0 && r.GetSecret() == "" && bad.Len() == 0 {
		bad.Add("update_mask", "is required (or a secret to rotate)")
	}
	if err := bad.Err("invalid source update"); err != nil {
		return nil, err
	}
	c := declaredOf(r.GetSource())
	d, err := s.store.UpdateSource(ctx, c.Name, caller(ctx).String(), func(d registry.Declared) (registry.Declared, error) {
		if paths["team"] {
			d.Team = c.Team
		}
		if paths["auth"] {
			d.Auth = c.Auth
		}
		if paths["generic"] {
			d.Settings.Mapping = c.Settings.Mapping
		}
		if d.Auth != generic.AuthHMAC {
			// A key source keeps no secret: an old one would be
			// refused by Check, and is worth nothing.
			d.Secret, d.HasSecret, d.Unsealed = "", false, nil
		}
		if r.GetSecret() != "" {
			d.Secret, d.HasSecret, d.Unsealed = r.GetSecret(), true, nil
		}
		return d, registry.Check(d)
	})
	if err != nil {
		return nil, sourceStatus(err)
	}
	s.reload(ctx)
	return &gatewayv1.UpdateSourceResponse{Source: sourcePB(d)}, nil
}

// DeleteSource implements SourceService.
func (s *SourceServer) DeleteSource(ctx context.Context, r *gatewayv1.DeleteSourceRequest) (*gatewayv1.DeleteSourceResponse, error) {
	if err := s.store.DeleteSource(ctx, r.GetName()); err != nil {
		return nil, sourceStatus(err)
	}
	s.reload(ctx)
	return &gatewayv1.DeleteSourceResponse{}, nil
}

// TestSource implements SourceService: the alerts body would make,
// through the given mapping or the stored source's, as the webhook would
// hand them to ingest (fingerprints from the labels).
func (s *SourceServer) TestSource(ctx context.Context, r *gatewayv1.TestSourceRequest) (*gatewayv1.TestSourceResponse, error) {
	m := mappingOf(r.GetGeneric())
	if m == nil {
		if r.GetName() == "" {
			return nil, server.InvalidArgument("invalid source test", server.FieldViolation{Field: "name", Description: "name a source, or give a mapping in generic"})
		}
		d, err := s.store.GetSource(ctx, r.GetName())
		if err != nil {
			return nil, sourceStatus(err)
		}
		if d.Settings.Mapping == nil {
			return nil, status.Errorf(codes.FailedPrecondition, "source %s has no mapping to try", d.Name)
		}
		m = d.Settings.Mapping
	}
	prg, err := generic.Compile(*m)
	if err != nil {
		if invalid, ok := errors.AsType[*server.BadRequestError](err); ok {
			for i := range invalid.Violations {
				invalid.Violations[i].Field = "generic." + invalid.Violations[i].Field
			}
		}
		return nil, err
	}
	h := http.Header{}
	for k, v := range r.GetHeaders() {
		h.Set(k, v)
	}
	alerts, err := prg.Map([]byte(r.GetBody()), h, time.Now())
	if err != nil {
		return nil, err
	}
	out := &gatewayv1.TestSourceResponse{Alerts: alerts}
	for _, a := range alerts {
		a.Fingerprint = alertlabel.Fingerprint(a.GetLabels())
	}
	if err := source.Validate(alerts); err != nil {
		if invalid, ok := errors.AsType[*server.BadRequestError](err); ok {
			for _, v := range invalid.Violations {
				out.Problems = append(out.Problems, v.Field+": "+v.Description)
			}
		} else {
			out.Problems = append(out.Problems, err.Error())
		}
	}
	return out, nil
}
