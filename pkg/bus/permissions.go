package bus

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// The NATS users that are not services.
const (
	// UserAdmin may do anything: it provisions the streams (vigil up, vigil
	// nats provision) and is the operator's own identity for the nats CLI.
	// No service connects as admin.
	UserAdmin = "admin"
	// UserPublisher is for direct alert publishers: it may publish
	// alert.fired and alert.resolved, and read its own publish acks.
	UserPublisher = "publisher"
)

// Role is what one NATS user may do with Vigil's events. Everything else is
// refused by the server, JetStream API calls included.
type Role struct {
	// User is the NATS user. For a service it is the service's name, which
	// is also the meta.producer of the events it publishes and the name of
	// its durable consumers (one on each stream it consumes from).
	User string
	// Publishes are the event subjects it may publish.
	Publishes []string
	// Consumes are the event subjects it reads. JetStream grants reading
	// per stream, not per subject: a user that consumes one subject of a
	// stream may create its durable consumer on that stream with any filter.
	// It may dead-letter (dlq.<subject>) exactly these, plus the stream's
	// batch subject.
	Consumes []string
	// Watches are the event subjects it receives live, as core NATS
	// subscriptions on the subjects themselves (no JetStream consumer: no
	// replay, no ack, at most once): for views of what happens now, such
	// as the web console's incident list.
	Watches []string
	// External: a publisher outside Vigil, whose meta.producer is its own to
	// choose, so consumers cannot check it for the subjects it publishes.
	External bool
}

// Roles are the bus permissions of every NATS user but admin: the one
// table the embedded server (RunServer) is configured from and the shipped
// configuration for an external server (Config, deploy/nats/nats.conf) is
// rendered from. It follows the services table of DESIGN.md: only monitor
// publishes incident.*, only repair publishes repair.* but for the
// approval answers, which come through the gateway.
var Roles = []Role{
	{
		User: "gateway",
		Publishes: []string{
			SubjectAlertFired, SubjectAlertResolved, SubjectAlertBatched,
			SubjectRepairApproved, SubjectRepairRejected,
		},
		// Who owns what, so that a team's ingest key opens and resolves
		// only its team's (or nobody's) alerts.
		Consumes: []string{
			SubjectAppRegistered, SubjectAppUpdated, SubjectAppDeleted,
			SubjectNamespaceMapped, SubjectNamespaceUnmapped,
		},
		// The web console's live incident list, and an incident's page:
		// its escalation, analysis and repairs.
		Watches: []string{
			SubjectIncidentOpened, SubjectIncidentUpdated, SubjectIncidentResolved, SubjectIncidentEscalated,
			SubjectAnalysisCompleted,
			SubjectRepairRequested, SubjectRepairApprovalRequested, SubjectRepairDecided,
			SubjectRepairBlocked, SubjectRepairSucceeded, SubjectRepairFailed,
		},
	},
	{
		User: "monitor",
		Publishes: []string{
			// incident.escalated: notify tells it in the incident's thread.
			SubjectIncidentOpened, SubjectIncidentUpdated, SubjectIncidentResolved, SubjectIncidentEscalated,
		},
		Consumes: []string{
			SubjectAlertFired, SubjectAlertResolved,
			// A verified repair resolves its incident.
			SubjectRepairSucceeded,
			SubjectAppRegistered, SubjectAppUpdated, SubjectAppDeleted,
			SubjectNamespaceMapped, SubjectNamespaceUnmapped,
			// Deploy quiet: an app's rollouts hold its warning alerts.
			SubjectDeployRequested, SubjectDeploySucceeded, SubjectDeployFailed, SubjectDeployRolledBack,
		},
	},
	{
		User:      "analysis",
		Publishes: []string{SubjectAnalysisCompleted},
		Consumes: []string{
			// incident.updated: a reopened incident, or one whose severity
			// rose, is analysed again.
			SubjectIncidentOpened, SubjectIncidentUpdated, SubjectRepairSucceeded, SubjectRepairFailed,
			// Its read model of recent deployments: a deploy shortly
			// before an incident is evidence.
			SubjectDeployRequested, SubjectDeploySucceeded, SubjectDeployFailed, SubjectDeployRolledBack,
			// Which team each app belongs to: whose analyses they are.
			SubjectAppRegistered, SubjectAppUpdated, SubjectAppDeleted,
			SubjectNamespaceMapped, SubjectNamespaceUnmapped,
		},
	},
	{
		User: "repair",
		Publishes: []string{
			SubjectRepairRequested, SubjectRepairApprovalRequested, SubjectRepairSucceeded, SubjectRepairFailed,
			SubjectRepairDecided, SubjectRepairBlocked,
		},
		Consumes: []string{
			SubjectAnalysisCompleted, SubjectRepairApproved, SubjectRepairRejected,
			// Each incident's subject, as the monitor resolved it: what its
			// repairs may touch, checked again whatever an analysis says;
			// and its priority, which approval cards show.
			SubjectIncidentOpened, SubjectIncidentUpdated,
			// Which team each app belongs to, where it runs, and whether
			// its repairs may run without a person.
			SubjectAppRegistered, SubjectAppUpdated, SubjectAppDeleted,
			SubjectNamespaceMapped, SubjectNamespaceUnmapped,
		},
	},
	{
		User: "notify",
		// What it tells people about, and no more: a permission is added
		// with the handler that needs it.
		Consumes: []string{
			SubjectIncidentOpened, SubjectIncidentResolved,
			SubjectIncidentUpdated, // routes: counts and acknowledgements of incidents repeated
			SubjectAnalysisCompleted,
			SubjectRepairRequested, SubjectRepairApprovalRequested, SubjectRepairDecided,
			SubjectRepairBlocked, SubjectRepairSucceeded, SubjectRepairFailed,
			// Escalation steps, in the incident's thread; deploys, on
			// their own.
			SubjectIncidentEscalated,
			SubjectDeployRequested, SubjectDeploySucceeded, SubjectDeployFailed, SubjectDeployRolledBack,
		},
	},
	{
		User: "deploy",
		Publishes: []string{
			SubjectAppRegistered, SubjectAppUpdated, SubjectAppDeleted,
			SubjectNamespaceMapped, SubjectNamespaceUnmapped,
			SubjectDeployRequested, SubjectDeploySucceeded, SubjectDeployFailed,
			SubjectDeployRolledBack, SubjectDeployProgress,
		},
		Consumes: []string{SubjectDeployRequested},
	},
	{
		User:      UserPublisher,
		Publishes: []string{SubjectAlertFired, SubjectAlertResolved},
		External:  true,
	},
}

// Users are every NATS user of Vigil: admin, then each role's.
func Users() []string {
	users := []string{UserAdmin}
	for _, r := range Roles {
		users = append(users, r.User)
	}
	return users
}

// InboxPrefix is the prefix of user's reply subjects. Each user reads
// replies (JetStream API answers, publish acks, pulled messages) only under
// its own prefix, so no user can read another's.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// PasswordVar is the environment variable an external nats-server reads
// user's password from (see Config).
func PasswordVar(user string) string {
	return "VIGIL_NATS_" + strings.ToUpper(user) + "_PASSWORD"
}

// Credentials identify a NATS user.
type Credentials struct {
	User     string
	Password string
}

// String never shows the password.
func (c Credentials) String() string { return c.User }

// natsOptions log in as c and keep replies under c's own inbox prefix.
func (c Credentials) natsOptions() []nats.Option {
	if c.User == "" {
		return nil
	}
	return []nats.Option{nats.UserInfo(c.User, c.Password), nats.CustomInboxPrefix(InboxPrefix(c.User))}
}

func role(user string) (Role, bool) {
	i := slices.IndexFunc(Roles, func(r Role) bool { return r.User == user })
	if i < 0 {
		return Role{}, false
	}
	return Roles[i], true
}

// grant is a user's allowed subjects, sorted.
type grant struct {
	publish, subscribe []string
}

// grantOf turns a role into NATS subjects:
//   - publish: its event subjects; dlq.<subject> for what it consumes (and
//     for the batch subject of a stream it consumes); for each stream it
//     consumes, the JetStream API calls of its own durable consumer there
//     (info, create or update, pull) and its acks; $JS.API.INFO, which
//     bus.Connect calls to check that JetStream is there (services only);
//   - subscribe: its own inbox, where every reply comes, and the subjects
//     it watches live.
//
// Nothing else: no stream is created, updated, listed or deleted, none
// purged but of what every consumer of a trimmed stream acknowledged (see
// trim), no other consumer is touched, and no event is read but through
// its own durable consumers or, live, the subjects it watches.
func (r Role) grant() grant {
	var g grant
	g.publish = append(g.publish, r.Publishes...)
	for _, s := range r.Consumes {
		g.publish = append(g.publish, DLQPrefix+s)
	}
	streams, err := r.streams()
	if err != nil {
		panic(err.Error())
	}
	for _, s := range r.Watches {
		if _, err := streamFor(s); err != nil {
			panic(fmt.Sprintf("bus: role %s watches %s: %v", r.User, s, err))
		}
	}
	for _, st := range streams {
		if bs, ok := batchSubjects[st]; ok {
			g.publish = append(g.publish, DLQPrefix+bs)
		}
		g.publish = append(g.publish,
			"$JS.API.CONSUMER.INFO."+st+"."+r.User,
			"$JS.API.CONSUMER.CREATE."+st+"."+r.User,
			"$JS.API.CONSUMER.MSG.NEXT."+st+"."+r.User,
			"$JS.ACK."+st+"."+r.User+".>",
		)
		// Its consumer drops what every consumer acknowledged (see trim).
		if trimmed[st] {
			g.publish = append(g.publish,
				"$JS.API.STREAM.INFO."+st,
				"$JS.API.CONSUMER.LIST."+st,
				"$JS.API.STREAM.PURGE."+st,
			)
		}
	}
	if !r.External {
		g.publish = append(g.publish, "$JS.API.INFO")
	}
	slices.Sort(g.publish)
	g.publish = slices.Compact(g.publish)
	g.subscribe = append([]string{InboxPrefix(r.User) + ".>"}, r.Watches...)
	slices.Sort(g.subscribe)
	return g
}

// Permissions returns user's permissions on the server; nil for admin, who
// may do anything.
func Permissions(user string) (*server.Permissions, error) {
	if user == UserAdmin {
		return nil, nil
	}
	r, ok := role(user)
	if !ok {
		return nil, fmt.Errorf("bus: no NATS user %q (want one of %v)", user, Users())
	}
	g := r.grant()
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: g.publish},
		Subscribe: &server.SubjectPermission{Allow: g.subscribe},
	}, nil
}

// serverUsers are creds as the embedded server's users, each with its
// role's permissions.
func serverUsers(creds []Credentials) ([]*server.User, error) {
	users := make([]*server.User, 0, len(creds))
	for _, c := range creds {
		if c.Password == "" {
			return nil, fmt.Errorf("bus: NATS user %s has no password", c.User)
		}
		p, err := Permissions(c.User)
		if err != nil {
			return nil, err
		}
		users = append(users, &server.User{Username: c.User, Password: c.Password, Permissions: p})
	}
	return users, nil
}

// expectedProducers are the meta.producer values an event on subject may
// carry: the users that may publish it. ok is false when a publisher outside
// Vigil may publish it too, which names itself as it likes: then any
// producer goes.
func expectedProducers(subject string) (producers []string, ok bool) {
	for _, r := range Roles {
		if !slices.Contains(r.Publishes, subject) {
			continue
		}
		if r.External {
			return nil, false
		}
		producers = append(producers, r.User)
	}
	return producers, true
}

// checkProducer fails an event whose meta.producer is not a user allowed to
// publish its subject: a publisher got past the permissions (a server run
// without them) or a service misnames itself.
func checkProducer(subject string, e Event) error {
	want, ok := expectedProducers(subject)
	if !ok {
		return nil
	}
	if got := e.GetMeta().GetProducer(); !slices.Contains(want, got) {
		return fmt.Errorf("event %s on %s comes from producer %q, not from %s, the only publisher(s) of %s",
			e.GetMeta().GetId(), subject, got, strings.Join(want, ", "), subject)
	}
	return nil
}

// NewPassword returns a random password for a NATS user: 192 bits, led by
// letters so that nats-server reads it as a string from its environment.
func NewPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "pw_" + hex.EncodeToString(b)
}

// streams are the streams r's durable consumers live on, sorted.
func (r Role) streams() ([]string, error) {
	var streams []string
	for _, s := range r.Consumes {
		st, err := streamFor(s)
		if err != nil {
			return nil, fmt.Errorf("bus: role %s consumes %s: %w", r.User, s, err)
		}
		streams = append(streams, st)
	}
	slices.Sort(streams)
	return slices.Compact(streams), nil
}
