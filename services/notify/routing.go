package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// Directory is where notify finds its channels by name: the ones routes
// name, the ones an escalation names, and a user's own.
type Directory interface {
	// All are every channel: where everything goes while no routes are
	// applied.
	All() []*channel.Endpoint
	// Channel is the channel named name, false when there is none.
	Channel(name string) (*channel.Endpoint, bool)
	// Personal are user's own channels (a direct chat, their email).
	Personal(user string) []*channel.Endpoint
}

// routing is the routing document in force: tree is nil while none was
// applied.
type routing struct {
	version int64
	tree    *route.Tree
}

// routes holds what every replica routes by; loadRoutes refreshes it.
type routes struct {
	current atomic.Pointer[routing]
	store   *postgres.Routes
}

// routeHistory is how many versions of the routing document are kept.
const routeHistory = 20

// routeOf is what routes look at in e, published on subject: an
// incident's team, app and namespace from its subject as monitor resolved
// it, never from a label, and its labels (its group's over its first
// alert's); a deploy's app and team. A reply's incident is looked up by targets.
func routeOf(subject string, e bus.Event) route.Event {
	ev := route.Event{Kind: route.KindOf(subject)}
	switch e := e.(type) {
	case interface{ GetIncident() *typesv1.Incident }:
		inc := e.GetIncident()
		ev.Team, ev.App, ev.Namespace = inc.GetTeam(), inc.GetApp(), inc.GetNamespace()
		ev.Priority, ev.Severity = priorityName(inc.GetPriority()), severityName(inc.GetSeverity())
		ev.Labels = map[string]string{}
		if as := inc.GetAlerts(); len(as) > 0 {
			for k, v := range as[0].GetAlert().GetLabels() {
				ev.Labels[k] = v
			}
		}
		for k, v := range inc.GetGroupLabels() {
			ev.Labels[k] = v
		}
	case interface {
		GetApp() string
		GetTeam() string
	}:
		// A deploy: its app, and the team that owns the revision deployed.
		ev.Team, ev.App = e.GetTeam(), e.GetApp()
	}
	return ev
}

func priorityName(p typesv1.Priority) string {
	if p == typesv1.Priority_PRIORITY_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(p.String(), "PRIORITY_")
}

func severityName(s typesv1.Severity) string {
	if s == typesv1.Severity_SEVERITY_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "SEVERITY_"))
}

// targets are the channels that hear about n, each with the locale its
// message is drawn in, and records what routes need of the incident n
// announces.
//
// With no routes applied, every channel hears about everything. An
// escalation goes to whom it names: its channels and its users' own. An
// incident's opening and a deploy go where routes send them. A reply (an
// update, the resolution, an analysis, a card, a repair's progress) goes
// where routes send its kind AND the incident's opening was sent: it is
// threaded only where the incident was announced, so a channel that only
// a repair.* route names never hears of repairs.
func (s *Service) targets(ctx context.Context, n note) ([]*channel.Endpoint, error) {
	if err := s.track(ctx, n); err != nil {
		return nil, err
	}
	if e, ok := n.event.(*eventsv1.IncidentEscalated); ok {
		return s.escalationTargets(ctx, e), nil
	}
	tree := s.routes.current.Load().tree
	if tree == nil {
		return s.dir.All(), nil
	}
	ev := n.route
	if isReply(ev.Kind) {
		inc, ok, err := s.incidents.Get(ctx, n.incidentID)
		if err != nil {
			return nil, err
		}
		if ok {
			ev = incidentEvent(ev.Kind, inc)
		}
	}
	return s.endpointsOf(ctx, n, matches(tree, ev)), nil
}

// matches are the routes tree sends ev to; a reply's keep only the
// channels that also hear of the incident's opening.
func matches(tree *route.Tree, ev route.Event) []route.Match {
	ms := tree.Match(ev)
	if !isReply(ev.Kind) {
		return ms
	}
	opened := ev
	opened.Kind = route.IncidentOpened
	return intersect(ms, tree.Match(opened))
}

// isReply says whether an event of kind k is told in its incident's
// thread.
func isReply(k route.Kind) bool {
	switch k {
	case route.IncidentOpened, route.IncidentEscalated, route.DeployStarted, route.DeploySucceeded, route.DeployFailed, route.DeployRolledBack:
		return false
	}
	return true
}

// incidentEvent is inc as routes see it, for an event of kind k.
func incidentEvent(k route.Kind, inc postgres.Incident) route.Event {
	return route.Event{
		Kind: k, Team: inc.Team, App: inc.App, Namespace: inc.Namespace,
		Priority: inc.Priority, Severity: inc.Severity, Labels: inc.Labels,
	}
}

// intersect keeps of ms the receivers that also are in others'.
func intersect(ms, others []route.Match) []route.Match {
	allowed := route.Receivers(others)
	out := make([]route.Match, 0, len(ms))
	for _, m := range ms {
		m.Receivers = slices.DeleteFunc(slices.Clone(m.Receivers), func(r string) bool { return !slices.Contains(allowed, r) })
		out = append(out, m)
	}
	return out
}

// endpointsOf are the channels ms name, each once, with its route's
// locale over the channel's. A channel deleted since the routes were
// applied is skipped.
func (s *Service) endpointsOf(ctx context.Context, n note, ms []route.Match) []*channel.Endpoint {
	var out []*channel.Endpoint
	for _, m := range ms {
		for _, name := range m.Receivers {
			if slices.ContainsFunc(out, func(e *channel.Endpoint) bool { return e.Name == name }) {
				continue
			}
			ep, ok := s.dir.Channel(name)
			if !ok {
				s.log.WarnContext(ctx, "route names a channel that does not exist, skipped", "channel", name, "route", m.Path, "event_id", n.eventID)
				continue
			}
			out = append(out, withLocale(ep, m.Language, m.TimeZone, m.Templates))
		}
	}
	return out
}

// withLocale is ep drawing its messages in language and time zone, with
// the template set templates, where they are set (a route's). A zone is
// checked when its route is applied; one unknown since keeps the
// channel's.
func withLocale(ep *channel.Endpoint, language, zone, templates string) *channel.Endpoint {
	if language == "" && zone == "" && templates == "" {
		return ep
	}
	cp := *ep
	if language != "" {
		cp.Locale.Language = language
	}
	if templates != "" {
		cp.Locale.Templates = templates
	}
	if zone != "" {
		if z, err := loadZone(zone); err == nil {
			cp.Locale.Zone = z
		}
	}
	return &cp
}

// zones are the time zones routes named, loaded once: withLocale runs on
// every send, and time.LoadLocation reads the zone's file each call.
var zones sync.Map // name → *time.Location

func loadZone(name string) (*time.Location, error) {
	if z, ok := zones.Load(name); ok {
		return z.(*time.Location), nil
	}
	z, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, z)
	return z, nil
}

// escalationTargets are the channels e names and its users' own, each
// once; a name that is not a channel is logged and skipped.
func (s *Service) escalationTargets(ctx context.Context, e *eventsv1.IncidentEscalated) []*channel.Endpoint {
	var out []*channel.Endpoint
	add := func(ep *channel.Endpoint) {
		if !slices.ContainsFunc(out, func(o *channel.Endpoint) bool { return o.Name == ep.Name }) {
			out = append(out, ep)
		}
	}
	for _, name := range e.GetChannels() {
		ep, ok := s.dir.Channel(name)
		if !ok {
			s.log.WarnContext(ctx, "escalation names a channel that does not exist, skipped", "channel", name, "incident_id", e.GetIncident().GetId())
			continue
		}
		add(ep)
	}
	for _, u := range e.GetUsers() {
		eps := s.dir.Personal(u)
		if len(eps) == 0 {
			s.log.WarnContext(ctx, "escalation names a user without a channel of their own", "user", u, "incident_id", e.GetIncident().GetId())
		}
		for _, ep := range eps {
			add(ep)
		}
	}
	return out
}

// track records the incident n announces (opened, updated, resolved), so
// that its replies and re-announcements are routed as it was.
func (s *Service) track(ctx context.Context, n note) error {
	var inc *typesv1.Incident
	switch e := n.event.(type) {
	case *eventsv1.IncidentOpened:
		inc = e.GetIncident()
	case *eventsv1.IncidentUpdated:
		inc = e.GetIncident()
	case *eventsv1.IncidentResolved:
		inc = e.GetIncident()
	default:
		return nil
	}
	return s.incidents.Track(ctx, postgres.Incident{
		ID: inc.GetId(), Title: inc.GetTitle(),
		Team: n.route.Team, App: n.route.App, Namespace: n.route.Namespace,
		Priority: n.route.Priority, Severity: n.route.Severity, Labels: n.route.Labels,
		OpenedAt: inc.GetOpenedAt().AsTime(), Firing: int(inc.GetFiringCount()), Alerts: int(inc.GetAlertCount()),
		Acknowledged: inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED,
		Resolved:     inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED || n.route.Kind == route.IncidentResolved,
	})
}

// handleUpdate records what an incident's update changes for routes
// (its counts, its acknowledgement); notify says nothing of it, but that
// the incident flaps (once: monitor tells nothing else while it does).
func (s *Service) handleUpdate(ctx context.Context, q queueing, e *eventsv1.IncidentUpdated) error {
	if e.GetReason() == reasonFlapping {
		return s.queue(ctx, q, e)
	}
	return s.track(ctx, note{event: e, route: routeOf(bus.SubjectIncidentUpdated, e)})
}

// reasonFlapping is monitor's incident.updated reason for an incident
// whose alerts flap (services/monitor/internal/incident, flap.go).
const reasonFlapping = "flapping"

// loadRoutes makes the routing document in force the one routes use, if
// its version changed. A document stored by a newer notify that this one
// cannot compile keeps the one in use.
func (s *Service) loadRoutes(ctx context.Context) error {
	v, err := s.routes.store.Version(ctx)
	if err != nil {
		return err
	}
	if cur := s.routes.current.Load(); cur != nil && cur.version == v {
		return nil
	}
	if v == 0 {
		s.routes.current.Store(&routing{})
		return nil
	}
	h, err := s.routes.store.History(ctx, 1)
	if err != nil {
		return err
	}
	if len(h) == 0 {
		return nil // deleted since: the next poll sees what is there
	}
	// Channels were checked when it was applied; one deleted since is
	// skipped when sending.
	tree, err := route.Compile(h[0].Config, func(string) bool { return true }, nil)
	if err != nil {
		return fmt.Errorf("routing version %d: %w", h[0].Version, err)
	}
	s.routes.current.Store(&routing{version: h[0].Version, tree: tree})
	s.log.InfoContext(ctx, "routes loaded", "version", h[0].Version, "applied_by", h[0].AppliedBy)
	return nil
}

// refreshRoutes polls the routing version, so that every replica routes
// by a document applied through any of them within RoutesRefresh.
func (s *Service) refreshRoutes(ctx context.Context) {
	every(ctx, s.opts.RoutesRefresh, func() {
		if err := s.loadRoutes(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "refreshing routes failed", "error", err)
		}
	})
}

// refreshChannels polls the stored channels' version, so that every
// replica uses a channel created through any of them within
// ChannelRefresh. A poll of one row rather than LISTEN/NOTIFY: it needs
// no connection held per replica, misses nothing across a lost
// connection or a restart of Postgres, and a few seconds is fast enough
// for a change a person makes.
func (s *Service) refreshChannels(ctx context.Context) {
	every(ctx, s.opts.ChannelRefresh, func() {
		if err := s.channels.Load(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "reloading channels failed", "error", err)
		}
	})
}

// every runs do every d until ctx ends.
func every(ctx context.Context, d time.Duration, do func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		do()
	}
}

// applyFile applies the routing document of file at start, unless it is
// the one in force already (every replica reads the same file).
func (s *Service) applyFile(ctx context.Context, file string) error {
	data, err := os.ReadFile(file) //nolint:gosec // the operator's own file
	if err != nil {
		return fmt.Errorf("VIGIL_ROUTES_FILE: %w", err)
	}
	cfg, err := route.Parse(data)
	if err == nil {
		_, err = route.Compile(cfg, s.channelExists, s.templateSet)
	}
	if err != nil {
		return fmt.Errorf("VIGIL_ROUTES_FILE %s: %w", file, err)
	}
	for {
		h, err := s.routes.store.History(ctx, 1)
		if err != nil {
			return err
		}
		var v int64
		if len(h) > 0 {
			if sameRoutes(h[0].Config, cfg) {
				return nil
			}
			v = h[0].Version
		}
		_, err = s.routes.store.Apply(ctx, cfg, v, "file:"+file, routeHistory)
		if !errors.Is(err, postgres.ErrStaleVersion) {
			return err
		}
		// Another replica applied it (or something else) meanwhile: look
		// again.
	}
}

// reloadFile applies RoutesFile again on each reload asked for; a file
// with a mistake is logged and the routes in force stay.
func (s *Service) reloadFile(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.reload:
		}
		err := s.applyFile(ctx, s.opts.RoutesFile)
		if err == nil {
			err = s.loadRoutes(ctx)
		}
		if err != nil {
			s.log.ErrorContext(ctx, "routes file not reloaded, the routes in force stay", "file", s.opts.RoutesFile, "error", err)
			continue
		}
		s.log.InfoContext(ctx, "routes file reloaded", "file", s.opts.RoutesFile)
	}
}

func (s *Service) channelExists(name string) bool {
	_, ok := s.dir.Channel(name)
	return ok
}

func sameRoutes(a, b *notifyv1.RoutingConfig) bool { return proto.Equal(a, b) }

// templateSet says whether a route's template set is loaded.
func (s *Service) templateSet(name string) bool {
	_, ok := s.look.Sets[name]
	return ok
}
