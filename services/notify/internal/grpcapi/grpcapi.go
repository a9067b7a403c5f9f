// Package grpcapi is notify's gRPC port, ChannelService (with what the
// channels were told of an incident) and RouteService, with its errors
// mapped to status codes in one place.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/internal/registry"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// Server implements notifyv1.ChannelServiceServer.
type Server struct {
	notifyv1.UnimplementedChannelServiceServer
	store *postgres.Channels
	reg   *registry.Registry
	// deliveries and incidents are what notify told whom, and the
	// incidents it told about (ListIncidentMessages).
	deliveries *postgres.Deliveries
	incidents  *postgres.Incidents
	deps       channel.Deps
	// look draws the test message as notify draws its others.
	look message.Defaults
	log  *slog.Logger
}

// New returns the API over the channel store; reg is reloaded after
// every change, so this replica uses it at once (the others within their
// poll). Test messages are drawn with look, like notify's others. An
// incident's messages are read from deliveries, its team from incidents.
func New(
	store *postgres.Channels, reg *registry.Registry, deliveries *postgres.Deliveries, incidents *postgres.Incidents,
	deps channel.Deps, look message.Defaults,
) *Server {
	return &Server{
		store: store, reg: reg, deliveries: deliveries, incidents: incidents, deps: deps, look: look,
		log: deps.Logger.With("component", "channels"),
	}
}

// testTimeout bounds a test message: a provider that does not answer in
// this long is not one to store.
const testTimeout = 20 * time.Second

var (
	// errTestFailed: the provider refused the test message.
	errTestFailed = errors.New("the test message was not delivered")
	// errReadOnly: an environment channel changes with its variables.
	errReadOnly = errors.New("configured by environment variables: change them and restart notify")
)

// toStatus maps notify's sentinels to their codes; the error interceptor
// (pkg/server) answers the rest.
func toStatus(err error) error {
	switch {
	case errors.Is(err, postgres.ErrChannelNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, postgres.ErrChannelExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, postgres.ErrNoKey), errors.Is(err, seal.ErrOpen), errors.Is(err, errTestFailed), errors.Is(err, errReadOnly),
		errors.Is(err, route.ErrFileInCharge):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, postgres.ErrStaleVersion):
		return status.Error(codes.Aborted, "routes were applied since the version given: get them again, and apply your change over the new version")
	}
	return err
}

// ListChannels implements the RPC: the channels the caller manages (an
// admin: all, the environment's too).
func (s *Server) ListChannels(ctx context.Context, _ *notifyv1.ListChannelsRequest) (*notifyv1.ListChannelsResponse, error) {
	out := &notifyv1.ListChannelsResponse{}
	if manage(ctx, postgres.Channel{}) == nil {
		for _, ep := range s.reg.Env() {
			out.Channels = append(out.Channels, envProto(ep))
		}
	}
	recs, err := s.store.List(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, rec := range recs {
		if manage(ctx, rec) == nil {
			out.Channels = append(out.Channels, toProto(rec))
		}
	}
	return out, nil
}

// GetChannel implements the RPC.
func (s *Server) GetChannel(ctx context.Context, r *notifyv1.GetChannelRequest) (*notifyv1.GetChannelResponse, error) {
	if ep, ok := s.reg.EnvChannel(r.GetName()); ok {
		if err := manage(ctx, postgres.Channel{Name: ep.Name}); err != nil {
			return nil, err
		}
		return &notifyv1.GetChannelResponse{Channel: envProto(ep)}, nil
	}
	rec, err := s.store.Get(ctx, r.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := manage(ctx, rec); err != nil {
		return nil, err
	}
	return &notifyv1.GetChannelResponse{Channel: toProto(rec)}, nil
}

// CreateChannel implements the RPC: the channel is stored only once it
// took a test message (unless no_test).
func (s *Server) CreateChannel(ctx context.Context, r *notifyv1.CreateChannelRequest) (*notifyv1.CreateChannelResponse, error) {
	rec := fromProto(r.GetChannel())
	rec.Credential = r.GetCredential()
	if err := validate(rec, "channel.", s.look.Sets); err != nil {
		return nil, err
	}
	if err := manage(ctx, rec); err != nil {
		return nil, err
	}
	if _, err := s.store.Get(ctx, rec.Name); err == nil {
		return nil, toStatus(fmt.Errorf("channel %s: %w", rec.Name, postgres.ErrChannelExists))
	} else if !errors.Is(err, postgres.ErrChannelNotFound) {
		return nil, toStatus(err)
	}
	if !r.GetNoTest() {
		if err := s.mustTest(ctx, rec); err != nil {
			return nil, toStatus(err)
		}
	}
	rec.CreatedBy = caller(ctx)
	rec, err := s.store.Create(ctx, rec)
	if err != nil {
		return nil, toStatus(err)
	}
	s.reload(ctx)
	s.log.InfoContext(ctx, "channel created", "channel", rec.Name, "kind", rec.Kind, "by", rec.CreatedBy)
	return &notifyv1.CreateChannelResponse{Channel: toProto(rec)}, nil
}

// UpdateChannel implements the RPC.
func (s *Server) UpdateChannel(ctx context.Context, r *notifyv1.UpdateChannelRequest) (*notifyv1.UpdateChannelResponse, error) {
	name := r.GetChannel().GetName()
	paths, err := updatePaths(r)
	if err != nil {
		return nil, err
	}
	if _, ok := s.reg.EnvChannel(name); ok {
		return nil, toStatus(fmt.Errorf("channel %s: %w", name, errReadOnly))
	}
	rec, err := s.store.Update(ctx, name, caller(ctx), func(old postgres.Channel) (postgres.Channel, error) {
		if err := manage(ctx, old); err != nil {
			return old, err
		}
		if old.Unsealed != nil && r.GetCredential() == "" {
			return old, old.Unsealed
		}
		c := merge(old, fromProto(r.GetChannel()), paths)
		if r.GetCredential() != "" {
			c.Credential = r.GetCredential()
		}
		if err := validate(c, "channel.", s.look.Sets); err != nil {
			return old, err
		}
		// Moved to another team or person: the caller must manage it
		// there too.
		if err := manage(ctx, c); err != nil {
			return old, err
		}
		if !r.GetNoTest() {
			if err := s.mustTest(ctx, c); err != nil {
				return old, err
			}
		}
		return c, nil
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.reload(ctx)
	s.log.InfoContext(ctx, "channel updated", "channel", rec.Name, "by", rec.UpdatedBy, "credential_rotated", r.GetCredential() != "")
	return &notifyv1.UpdateChannelResponse{Channel: toProto(rec)}, nil
}

// DeleteChannel implements the RPC.
func (s *Server) DeleteChannel(ctx context.Context, r *notifyv1.DeleteChannelRequest) (*notifyv1.DeleteChannelResponse, error) {
	if _, ok := s.reg.EnvChannel(r.GetName()); ok {
		return nil, toStatus(fmt.Errorf("channel %s: %w", r.GetName(), errReadOnly))
	}
	rec, err := s.store.Get(ctx, r.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := manage(ctx, rec); err != nil {
		return nil, err
	}
	if err := s.store.Delete(ctx, rec.Name); err != nil {
		return nil, toStatus(err)
	}
	s.reload(ctx)
	s.log.InfoContext(ctx, "channel deleted", "channel", rec.Name, "by", caller(ctx))
	return &notifyv1.DeleteChannelResponse{}, nil
}

// TestChannel implements the RPC: the provider's answer, delivered or
// not, is the response; only a channel that cannot be tried is an error.
func (s *Server) TestChannel(ctx context.Context, r *notifyv1.TestChannelRequest) (*notifyv1.TestChannelResponse, error) {
	if ep, ok := s.reg.EnvChannel(r.GetName()); ok {
		if err := manage(ctx, postgres.Channel{Name: ep.Name}); err != nil {
			return nil, err
		}
		return s.test(ctx, ep), nil
	}
	rec, err := s.store.Get(ctx, r.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := manage(ctx, rec); err != nil {
		return nil, err
	}
	if rec.Unsealed != nil {
		return nil, toStatus(rec.Unsealed)
	}
	ep, err := registry.Open(rec, s.deps)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return s.test(ctx, ep), nil
}

// mustTest sends rec a test message, and says why it was not delivered.
func (s *Server) mustTest(ctx context.Context, rec postgres.Channel) error {
	ep, err := registry.Open(rec, s.deps)
	if err != nil {
		return fmt.Errorf("%w: %w", errTestFailed, err)
	}
	if res := s.test(ctx, ep); !res.GetDelivered() {
		return fmt.Errorf("%w to channel %s: %s", errTestFailed, rec.Name, res.GetError())
	}
	return nil
}

// test sends ep a test message in its language and time zone.
func (s *Server) test(ctx context.Context, ep *channel.Endpoint) *notifyv1.TestChannelResponse {
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	msg := s.look.For(message.ChannelTest(ep.Name, time.Now()), ep.Locale)
	id, err := ep.Send(ctx, msg, "")
	if err != nil {
		v := channel.Judge(err)
		s.log.InfoContext(ctx, "test message not delivered", "channel", ep.Name, "error", err)
		return &notifyv1.TestChannelResponse{Error: err.Error(), HttpStatus: int32(v.Status)} //nolint:gosec // an HTTP status
	}
	s.log.InfoContext(ctx, "test message delivered", "channel", ep.Name)
	return &notifyv1.TestChannelResponse{Delivered: true, MessageId: id}
}

// reload makes this replica use a change at once.
func (s *Server) reload(ctx context.Context) {
	if err := s.reg.Load(ctx); err != nil {
		s.log.WarnContext(ctx, "reloading channels failed: the change is used within the next poll", "error", err)
	}
}

// manage answers whether the caller of ctx may manage rec: admins every
// channel; an operator (the policy lets no one else this far) a team's
// channel of a team of theirs, and their own personal channels. A
// channel of no team and no person (and the environment's) reaches
// everyone: admins only.
func manage(ctx context.Context, rec postgres.Channel) error {
	p, ok := auth.FromContext(ctx)
	if !ok || p.Has(auth.Admin) {
		return nil
	}
	what := "channel " + rec.Name
	switch {
	case rec.User != "":
		if p.Kind != auth.KindUser || p.Name != rec.User {
			return status.Errorf(codes.PermissionDenied, "%s is %s's personal channel; %s manages only their own", what, rec.User, p)
		}
		if rec.Team != "" {
			return auth.CheckTeam(ctx, rec.Team, what)
		}
		return nil
	case rec.Team != "":
		return auth.CheckTeam(ctx, rec.Team, what)
	}
	return status.Errorf(codes.PermissionDenied, "%s belongs to no team or person: only admins manage it; %s may manage its teams' channels and its own", what, p)
}

func caller(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.String()
	}
	return "notify"
}

func fromProto(c *notifyv1.Channel) postgres.Channel {
	e := c.GetEmail()
	return postgres.Channel{
		Name: c.GetName(), Kind: c.GetKind(), Target: strings.TrimSpace(c.GetTarget()),
		Language: c.GetLanguage(), TimeZone: c.GetTimeZone(), Team: c.GetTeam(), User: c.GetUser(), Templates: c.GetTemplates(),
		Settings: postgres.Settings{
			APIURL: c.GetApiUrl(), SMTPHost: e.GetSmtpHost(), SMTPPort: int(e.GetSmtpPort()), TLS: e.GetTls(),
			Username: e.GetUsername(), From: e.GetFrom(), CAFile: e.GetCaFile(),
		},
	}
}

// toProto is rec as the API shows it: everything but the credential.
func toProto(rec postgres.Channel) *notifyv1.Channel {
	c := &notifyv1.Channel{
		Name: rec.Name, Kind: rec.Kind, Target: rec.Target, Language: rec.Language, TimeZone: rec.TimeZone,
		Team: rec.Team, User: rec.User, ApiUrl: rec.Settings.APIURL, Source: "api", HasCredential: rec.Sealed, Templates: rec.Templates,
		CreateTime: timestamppb.New(rec.CreatedAt), UpdateTime: timestamppb.New(rec.UpdatedAt),
		CreatedBy: rec.CreatedBy, UpdatedBy: rec.UpdatedBy,
	}
	if rec.Kind == "email" {
		s := rec.Settings
		c.Email = &notifyv1.EmailSettings{SmtpHost: s.SMTPHost, SmtpPort: int32(s.SMTPPort), Tls: s.TLS, Username: s.Username, From: s.From, CaFile: s.CAFile} //nolint:gosec // a port
	}
	return c
}

// envProto is an environment channel: named after its kind.
func envProto(ep *channel.Endpoint) *notifyv1.Channel {
	return &notifyv1.Channel{Name: ep.Name, Kind: ep.Name, Target: ep.Target, Language: ep.Locale.Language, Source: "env", HasCredential: true}
}

// updatable are the paths UpdateChannel changes.
var updatable = []string{"target", "language", "time_zone", "team", "user", "email", "api_url", "templates"}

func updatePaths(r *notifyv1.UpdateChannelRequest) (map[string]bool, error) {
	var v violations
	if r.GetChannel().GetName() == "" {
		v.Add("channel.name", "is required")
	}
	paths := map[string]bool{}
	for _, p := range r.GetUpdateMask().GetPaths() {
		if !slices.Contains(updatable, p) {
			v.Addf("update_mask", "%q cannot be changed: want paths among %s", p, strings.Join(updatable, ", "))
			continue
		}
		paths[p] = true
	}
	if len(paths) == 0 && r.GetCredential() == "" && v.Len() == 0 {
		v.Add("update_mask", "is required (or a credential to rotate)")
	}
	return paths, v.Err("invalid channel update")
}

// merge is old with the fields of c that paths name.
func merge(old, c postgres.Channel, paths map[string]bool) postgres.Channel {
	out := old
	if paths["target"] {
		out.Target = c.Target
	}
	if paths["language"] {
		out.Language = c.Language
	}
	if paths["time_zone"] {
		out.TimeZone = c.TimeZone
	}
	if paths["templates"] {
		out.Templates = c.Templates
	}
	if paths["team"] {
		out.Team = c.Team
	}
	if paths["user"] {
		out.User = c.User
	}
	if paths["api_url"] {
		out.Settings.APIURL = c.Settings.APIURL
	}
	if paths["email"] {
		api := out.Settings.APIURL
		out.Settings = c.Settings
		out.Settings.APIURL = api
	}
	return out
}
