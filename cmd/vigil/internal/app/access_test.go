package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/auth"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
)

// who is one caller of the matrix, and what the issue says it may do.
type who struct {
	name  string
	token string
	// holds: the permissions it has (none: it is not authenticated).
	holds []auth.Permission
	// teams it reaches; nil with every team.
	teams []string
	all   bool
	// actor as the audit log names it; "" when not authenticated.
	actor string
}

func (w who) authenticated() bool { return len(w.holds) > 0 }

// matrixCase is one RPC: what it needs, and how to call it as a caller.
type matrixCase struct {
	method string
	// perm the caller must hold, in the issue's terms (not read from
	// auth.Policy: this table is the specification the policy is tested
	// against).
	perm auth.Permission
	// team: the call reaches the app "shop" of team payments.
	team bool
	// ok are the codes an allowed call may answer (the fixture decides:
	// NotFound for an id that does not exist, Unimplemented for services
	// not built yet).
	ok   []codes.Code
	call func(ctx context.Context, c *clients, w who) error
	// rest is the same call over REST: method and path (and JSON body).
	rest, body string
}

type clients struct {
	alerts   gatewayv1.AlertServiceClient
	authn    gatewayv1.AuthServiceClient
	users    gatewayv1.UserServiceClient
	keys     gatewayv1.KeyServiceClient
	audit    gatewayv1.AuditServiceClient
	sources  gatewayv1.SourceServiceClient
	inc      monitorv1.IncidentServiceClient
	sil      monitorv1.SilenceServiceClient
	apps     deployv1.AppServiceClient
	clusters deployv1.ClusterServiceClient
	// credentials and rollbacks: the internal API, served in this
	// process too.
	credentials deployv1.ClusterCredentialServiceClient
	rollbacks   deployv1.RepairRollbackServiceClient
	repairs     repairv1.RepairServiceClient
	channels    notifyv1.ChannelServiceClient
	routes      notifyv1.RouteServiceClient
	analyses    analysisv1.AnalysisServiceClient
	admin       context.Context // as the bootstrap admin, for fixtures
	// shopIncident is an incident of app shop (team payments), and
	// shopAnalysis the analysis of it.
	shopIncident, shopAnalysis string

	// oncall and escalation: payments' schedule and policy "payments".
	oncall     monitorv1.OnCallServiceClient
	escalation monitorv1.EscalationServiceClient
	inhibition monitorv1.InhibitionServiceClient
}

func streamErr[T any](s grpc.ServerStreamingClient[T], err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

const noSuchID = "01a20236-f568-7af1-9546-d3f52f62c45a"

func matrixSchedule(name string) *monitorv1.OnCallSchedule {
	return &monitorv1.OnCallSchedule{Name: name, Team: "payments", Zone: "Asia/Taipei", Layers: []*monitorv1.ScheduleLayer{
		{Participants: []string{"olga"}, RotationDays: 7, Handoff: "09:00", Start: "2026-01-05"},
	}}
}

func matrixPolicy(name string) *monitorv1.EscalationPolicy {
	return &monitorv1.EscalationPolicy{Name: name, Team: "payments", Steps: []*monitorv1.EscalationStep{{Teams: []string{"payments"}}}}
}

func shopApp(name string) *deployv1.App {
	return &deployv1.App{Name: name, Framework: "flask", Plan: "basic", Image: "registry.example.com/shop:1.0.0", Owner: "payments"}
}

var matrix = []matrixCase{
	{
		method: "vigil.gateway.v1.AlertService/IngestAlerts", perm: auth.Ingest, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
				Labels: map[string]string{"alertname": "Matrix", "namespace": "shop", "who": w.name}, StartsAt: timestamppb.Now(),
			}}})
			return err
		}, rest: "POST /api/v1/alerts", body: `{"alerts":[{"labels":{"alertname":"MatrixREST","namespace":"shop"}}]}`,
	},

	{
		method: "vigil.gateway.v1.AuthService/Login", perm: auth.Public, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.authn.Login(ctx, &gatewayv1.LoginRequest{Username: "vera", Password: password("vera")})
			return err
		}, rest: "POST /api/v1/auth/login", body: `{"username":"vera","password":"correct horse vera battery"}`,
	},
	{
		method: "vigil.gateway.v1.AuthService/Refresh", perm: auth.Public, ok: []codes.Code{codes.Unauthenticated},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.authn.Refresh(ctx, &gatewayv1.RefreshRequest{RefreshToken: "vgr_not-a-token"})
			return err
		},
	},
	// The refresh token is the credential: an unknown one is NotFound.
	{
		method: "vigil.gateway.v1.AuthService/Logout", perm: auth.Public, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.authn.Logout(ctx, &gatewayv1.LogoutRequest{RefreshToken: "vgr_not-a-token"})
			return err
		},
	},
	{
		method: "vigil.gateway.v1.AuthService/WhoAmI", perm: auth.Authenticated, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.authn.WhoAmI(ctx, &gatewayv1.WhoAmIRequest{})
			return err
		}, rest: "GET /api/v1/auth/whoami",
	},

	{
		method: "vigil.gateway.v1.UserService/CreateUser", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.users.CreateUser(ctx, &gatewayv1.CreateUserRequest{
				User: &gatewayv1.User{Name: "made-by-" + w.name, Role: gatewayv1.Role_ROLE_VIEWER}, Password: password(w.name),
			})
			return err
		}, rest: "GET /api/v1/users",
	},
	{
		method: "vigil.gateway.v1.UserService/GetUser", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.users.GetUser(ctx, &gatewayv1.GetUserRequest{Name: "vera"})
			return err
		}, rest: "GET /api/v1/users/vera",
	},
	{
		method: "vigil.gateway.v1.UserService/ListUsers", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.users.ListUsers(ctx, &gatewayv1.ListUsersRequest{})
			return err
		}, rest: "GET /api/v1/users",
	},
	{
		method: "vigil.gateway.v1.UserService/UpdateUser", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.users.UpdateUser(ctx, &gatewayv1.UpdateUserRequest{
				User: &gatewayv1.User{Name: "vera", Email: w.name + "@example.com"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"email"}},
			})
			return err
		}, rest: "PATCH /api/v1/users/vera", body: `{"user":{"email":"x@example.com"},"update_mask":"email"}`,
	},
	// Anyone may call it for themselves; another user's password is an
	// admin's business.
	{
		method: "vigil.gateway.v1.UserService/SetPassword", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.users.SetPassword(ctx, &gatewayv1.SetPasswordRequest{Name: "bob", Password: password("bob")})
			return err
		},
	},

	{
		method: "vigil.gateway.v1.UserService/LinkChatIdentity", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.users.LinkChatIdentity(ctx, &gatewayv1.LinkChatIdentityRequest{
				Name: "bob", Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM, ExternalId: "1001",
			})
			return err
		}, rest: "POST /api/v1/users/bob:linkChatIdentity", body: `{"provider":"CHAT_PROVIDER_SLACK","external_id":"T01:U01"}`,
	},
	// Anyone may unlink their own; another user's is an admin's business.
	{
		method: "vigil.gateway.v1.UserService/UnlinkChatIdentity", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			if _, err := c.users.LinkChatIdentity(c.admin, &gatewayv1.LinkChatIdentityRequest{
				Name: "bob", Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM, ExternalId: "1002",
			}); err != nil {
				return fmt.Errorf("fixture: %w", err)
			}
			_, err := c.users.UnlinkChatIdentity(ctx, &gatewayv1.UnlinkChatIdentityRequest{Name: "bob", Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM})
			return err
		}, rest: "POST /api/v1/users/bob:unlinkChatIdentity", body: `{"provider":"CHAT_PROVIDER_SLACK"}`,
	},
	// Any user, for themselves: a key (any scope) is nobody to link, and
	// is refused by the service (FailedPrecondition), not the guard.
	{
		method: "vigil.gateway.v1.UserService/CreateChatLinkCode", perm: auth.Authenticated, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.users.CreateChatLinkCode(ctx, &gatewayv1.CreateChatLinkCodeRequest{Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM})
			code := status.Code(err)
			if strings.HasPrefix(w.actor, "key:") && code == codes.OK || strings.HasPrefix(w.actor, "user:") && code != codes.OK {
				return status.Errorf(codes.Internal, "%s got %s: %v", w.actor, code, err)
			}
			return err
		}, rest: "POST /api/v1/chatLinkCodes", body: `{"provider":"CHAT_PROVIDER_TELEGRAM"}`,
	},

	{
		method: "vigil.gateway.v1.KeyService/CreateKey", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.keys.CreateKey(ctx, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
				Name: "by-" + w.name, Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_READ}, Team: "payments",
			}})
			return err
		}, rest: "POST /api/v1/keys", body: `{"key":{"name":"rest","scopes":["SCOPE_READ"],"team":"payments"}}`,
	},
	// Lists the caller's teams' keys: allowed to every operator.
	{
		method: "vigil.gateway.v1.KeyService/ListKeys", perm: auth.Operate, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.keys.ListKeys(ctx, &gatewayv1.ListKeysRequest{})
			return err
		}, rest: "GET /api/v1/keys",
	},
	{
		method: "vigil.gateway.v1.KeyService/RevokeKey", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			k, err := c.keys.CreateKey(c.admin, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
				Name: "to-revoke-" + w.name, Scopes: []gatewayv1.Scope{gatewayv1.Scope_SCOPE_INGEST}, Team: "payments",
			}})
			if err != nil {
				return fmt.Errorf("fixture: %w", err)
			}
			_, err = c.keys.RevokeKey(ctx, &gatewayv1.RevokeKeyRequest{Id: k.GetKey().GetId()})
			return err
		},
	},

	{
		method: "vigil.gateway.v1.AuditService/ListAuditEvents", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.audit.ListAuditEvents(ctx, &gatewayv1.ListAuditEventsRequest{})
			return err
		}, rest: "GET /api/v1/audit",
	},

	// Declared webhook sources: admins only.
	{
		method: "vigil.gateway.v1.SourceService/ListSources", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.sources.ListSources(ctx, &gatewayv1.ListSourcesRequest{})
			return err
		}, rest: "GET /api/v1/sources",
	},
	{
		method: "vigil.gateway.v1.SourceService/GetSource", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			if err := c.matrixSource("src-get"); err != nil {
				return err
			}
			_, err := c.sources.GetSource(ctx, &gatewayv1.GetSourceRequest{Name: "src-get"})
			return err
		}, rest: "GET /api/v1/sources/src-get",
	},
	{
		method: "vigil.gateway.v1.SourceService/CreateSource", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.sources.CreateSource(ctx, &gatewayv1.CreateSourceRequest{Source: matrixSource("src-by-" + w.name)})
			return err
		},
	},
	{
		method: "vigil.gateway.v1.SourceService/UpdateSource", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			if err := c.matrixSource("src-update"); err != nil {
				return err
			}
			_, err := c.sources.UpdateSource(ctx, &gatewayv1.UpdateSourceRequest{
				Source: &gatewayv1.Source{Name: "src-update", Team: "web"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"team"}},
			})
			return err
		},
	},
	{
		method: "vigil.gateway.v1.SourceService/DeleteSource", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			if err := c.matrixSource("src-delete-" + w.name); err != nil {
				return err
			}
			_, err := c.sources.DeleteSource(ctx, &gatewayv1.DeleteSourceRequest{Name: "src-delete-" + w.name})
			return err
		},
	},
	{
		method: "vigil.gateway.v1.SourceService/TestSource", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			if err := c.matrixSource("src-test"); err != nil {
				return err
			}
			_, err := c.sources.TestSource(ctx, &gatewayv1.TestSourceRequest{Name: "src-test", Body: `{"name":"x"}`})
			return err
		}, rest: "POST /api/v1/sources:test", body: `{"name":"src-test","body":"{\"name\":\"x\"}"}`,
	},

	// Incidents belong to their app's team: shopIncident is app shop's.
	{
		method: "vigil.monitor.v1.IncidentService/ListIncidents", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
			return err
		}, rest: "GET /api/v1/incidents",
	},
	{
		method: "vigil.monitor.v1.IncidentService/GetIncident", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: c.shopIncident})
			return err
		}, rest: "GET /api/v1/incidents/{shopIncident}",
	},
	// Acknowledged once, then FailedPrecondition or OK again.
	{
		method: "vigil.monitor.v1.IncidentService/AcknowledgeIncident", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.AcknowledgeIncident(ctx, &monitorv1.AcknowledgeIncidentRequest{Id: c.shopIncident})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.IncidentService/ResolveIncident", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.ResolveIncident(ctx, &monitorv1.ResolveIncidentRequest{Id: c.shopIncident})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.IncidentService/ListAlerts", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.ListAlerts(ctx, &monitorv1.ListAlertsRequest{IncidentId: c.shopIncident})
			return err
		}, rest: "GET /api/v1/alerts?incident_id={shopIncident}",
	},

	{
		// A silence of namespace shop, payments' app's (ADR 10).
		method: "vigil.monitor.v1.SilenceService/CreateSilence", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.sil.CreateSilence(ctx, &monitorv1.CreateSilenceRequest{
				Matchers: []string{`namespace="shop"`, `alertname="Matrix"`, `who="` + w.name + `"`}, Duration: durationpb.New(time.Minute),
			})
			return err
		}, rest: "POST /api/v1/silences", body: `{"matchers":["namespace=\"shop\"","alertname=\"MatrixREST\""],"duration":"60s"}`,
	},
	{
		method: "vigil.monitor.v1.SilenceService/GetSilence", perm: auth.Read, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.sil.GetSilence(ctx, &monitorv1.GetSilenceRequest{Id: noSuchID})
			return err
		}, rest: "GET /api/v1/silences/" + noSuchID,
	},
	{
		method: "vigil.monitor.v1.SilenceService/ListSilences", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.sil.ListSilences(ctx, &monitorv1.ListSilencesRequest{})
			return err
		}, rest: "GET /api/v1/silences",
	},
	{
		method: "vigil.monitor.v1.SilenceService/ExpireSilence", perm: auth.Operate, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.sil.ExpireSilence(ctx, &monitorv1.ExpireSilenceRequest{Id: noSuchID})
			return err
		},
	},

	// Escalation: incidents by their team; schedules and policies by the
	// team that owns them (payments' schedule "payments"); reading for all.
	{
		method: "vigil.monitor.v1.IncidentService/EscalateIncident", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.EscalateIncident(ctx, &monitorv1.EscalateIncidentRequest{Id: c.shopIncident})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.IncidentService/SnoozeIncident", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.SnoozeIncident(ctx, &monitorv1.SnoozeIncidentRequest{Id: c.shopIncident, Duration: durationpb.New(time.Minute)})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.IncidentService/SetIncidentPriority", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inc.SetIncidentPriority(ctx, &monitorv1.SetIncidentPriorityRequest{Id: c.shopIncident, Priority: typesv1.Priority_PRIORITY_P1})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.OnCallService/CreateSchedule", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.oncall.CreateSchedule(ctx, &monitorv1.CreateScheduleRequest{Schedule: matrixSchedule("payments-" + w.name)})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.OnCallService/GetSchedule", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.oncall.GetSchedule(ctx, &monitorv1.GetScheduleRequest{Name: "payments"})
			return err
		}, rest: "GET /api/v1/oncall/schedules/payments",
	},
	{
		method: "vigil.monitor.v1.OnCallService/ListSchedules", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.oncall.ListSchedules(ctx, &monitorv1.ListSchedulesRequest{})
			return err
		}, rest: "GET /api/v1/oncall/schedules",
	},
	{
		method: "vigil.monitor.v1.OnCallService/UpdateSchedule", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.oncall.UpdateSchedule(ctx, &monitorv1.UpdateScheduleRequest{Schedule: matrixSchedule("payments")})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.OnCallService/DeleteSchedule", perm: auth.Operate, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.oncall.DeleteSchedule(ctx, &monitorv1.DeleteScheduleRequest{Name: "no-such-schedule"})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.OnCallService/AddOverride", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			// A day of its own for each caller: overrides must not overlap.
			start := time.Date(2030, 1, len(w.name), 0, 0, 0, 0, time.UTC)
			_, err := c.oncall.AddOverride(ctx, &monitorv1.AddOverrideRequest{Team: "payments", Override: &monitorv1.ScheduleOverride{
				Who: "olga", Start: timestamppb.New(start), End: timestamppb.New(start.Add(12 * time.Hour)),
			}})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.OnCallService/WhoIsOnCall", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.oncall.WhoIsOnCall(ctx, &monitorv1.WhoIsOnCallRequest{Team: "payments"})
			return err
		}, rest: "GET /api/v1/oncall/who?team=payments",
	},
	{
		method: "vigil.monitor.v1.OnCallService/ListShifts", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.oncall.ListShifts(ctx, &monitorv1.ListShiftsRequest{
				Schedule: "payments", From: timestamppb.Now(), To: timestamppb.New(time.Now().Add(24 * time.Hour)),
			})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.EscalationService/CreatePolicy", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.escalation.CreatePolicy(ctx, &monitorv1.CreatePolicyRequest{Policy: matrixPolicy("payments-" + w.name)})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.EscalationService/GetPolicy", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.escalation.GetPolicy(ctx, &monitorv1.GetPolicyRequest{Name: "payments"})
			return err
		}, rest: "GET /api/v1/escalation/policies/payments",
	},
	{
		method: "vigil.monitor.v1.EscalationService/ListPolicies", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.escalation.ListPolicies(ctx, &monitorv1.ListPoliciesRequest{})
			return err
		}, rest: "GET /api/v1/escalation/policies",
	},
	{
		method: "vigil.monitor.v1.EscalationService/UpdatePolicy", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.escalation.UpdatePolicy(ctx, &monitorv1.UpdatePolicyRequest{Policy: matrixPolicy("payments")})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.EscalationService/DeletePolicy", perm: auth.Operate, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.escalation.DeletePolicy(ctx, &monitorv1.DeletePolicyRequest{Name: "no-such-policy"})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.EscalationService/GetPriorityRules", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.escalation.GetPriorityRules(ctx, &monitorv1.GetPriorityRulesRequest{})
			return err
		}, rest: "GET /api/v1/escalation/priority-rules",
	},
	{
		method: "vigil.monitor.v1.EscalationService/SetPriorityRules", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.escalation.SetPriorityRules(ctx, &monitorv1.SetPriorityRulesRequest{Rules: &monitorv1.PriorityRules{}})
			return err
		},
	},
	{
		method: "vigil.monitor.v1.InhibitionService/GetInhibitionRules", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inhibition.GetInhibitionRules(ctx, &monitorv1.GetInhibitionRulesRequest{})
			return err
		}, rest: "GET /api/v1/inhibitions",
	},
	{
		// Version 0 applies once; later callers are allowed and find it
		// changed.
		method: "vigil.monitor.v1.InhibitionService/ApplyInhibitionRules", perm: auth.Admin, ok: []codes.Code{codes.OK, codes.Aborted},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.inhibition.ApplyInhibitionRules(ctx, &monitorv1.ApplyInhibitionRulesRequest{})
			return err
		}, rest: "PUT /api/v1/inhibitions", body: `{"rules":[],"version":"0"}`,
	},

	{
		method: "vigil.deploy.v1.AppService/CreateApp", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: shopApp("made-by-" + w.name)})
			return err
		}, rest: "POST /api/v1/apps", body: `{"app":{"name":"rest-app","framework":"flask","plan":"basic","image":"registry.example.com/a:1","owner":"payments"}}`,
	},
	{
		method: "vigil.deploy.v1.AppService/GetApp", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.apps.GetApp(ctx, &deployv1.GetAppRequest{Name: "shop"})
			return err
		}, rest: "GET /api/v1/apps/shop",
	},
	// Lists only the caller's teams' apps (checked below).
	{
		method: "vigil.deploy.v1.AppService/ListApps", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.apps.ListApps(ctx, &deployv1.ListAppsRequest{})
			return err
		}, rest: "GET /api/v1/apps",
	},
	{
		method: "vigil.deploy.v1.AppService/UpdateApp", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.apps.UpdateApp(ctx, &deployv1.UpdateAppRequest{
				App: &deployv1.App{Name: "shop", DisplayName: "Shop (" + w.name + ")"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			})
			return err
		}, rest: "PATCH /api/v1/apps/shop", body: `{"app":{"display_name":"Shop"},"update_mask":"displayName"}`,
	},
	{
		method: "vigil.deploy.v1.AppService/DeleteApp", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			name := "gone-" + w.name
			if _, err := c.apps.CreateApp(c.admin, &deployv1.CreateAppRequest{App: shopApp(name)}); err != nil {
				return fmt.Errorf("fixture: %w", err)
			}
			_, err := c.apps.DeleteApp(ctx, &deployv1.DeleteAppRequest{Name: name})
			return err
		},
	},
	// One deployment at a time: the second caller finds the first's.
	{
		method: "vigil.deploy.v1.AppService/DeployApp", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, _ who) error {
			return streamErr(c.apps.DeployApp(ctx, &deployv1.DeployAppRequest{Name: "shop"}))
		},
	},
	{
		method: "vigil.deploy.v1.AppService/RollbackApp", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK, codes.FailedPrecondition},
		call: func(ctx context.Context, c *clients, _ who) error {
			return streamErr(c.apps.RollbackApp(ctx, &deployv1.RollbackAppRequest{Name: "shop"}))
		},
	},
	// The deployment's app is looked up first: an unknown id is NotFound.
	{
		method: "vigil.deploy.v1.AppService/WatchDeployment", perm: auth.Read, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			return streamErr(c.apps.WatchDeployment(ctx, &deployv1.WatchDeploymentRequest{Id: noSuchID}))
		},
	},
	{
		method: "vigil.deploy.v1.AppService/GetDeployment", perm: auth.Read, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.apps.GetDeployment(ctx, &deployv1.GetDeploymentRequest{Id: noSuchID})
			return err
		}, rest: "GET /api/v1/deployments/" + noSuchID,
	},
	{
		method: "vigil.deploy.v1.AppService/ListDeployments", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.apps.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: "shop"})
			return err
		}, rest: "GET /api/v1/apps/shop/deployments",
	},
	{
		method: "vigil.deploy.v1.AppService/RenderApp", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.apps.RenderApp(ctx, &deployv1.RenderAppRequest{Name: "shop"})
			return err
		}, rest: "GET /api/v1/apps/shop:render",
	},

	{
		method: "vigil.deploy.v1.ClusterService/AddCluster", perm: auth.Admin, ok: []codes.Code{codes.InvalidArgument},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.clusters.AddCluster(ctx, &deployv1.AddClusterRequest{Name: "other", Kubeconfig: []byte("not a kubeconfig")})
			return err
		}, rest: "POST /api/v1/clusters", body: `{"name":"other"}`,
	},
	{
		method: "vigil.deploy.v1.ClusterService/ListClusters", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.clusters.ListClusters(ctx, &deployv1.ListClustersRequest{})
			return err
		}, rest: "GET /api/v1/clusters",
	},
	{
		method: "vigil.deploy.v1.ClusterService/RemoveCluster", perm: auth.Admin, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.clusters.RemoveCluster(ctx, &deployv1.RemoveClusterRequest{Name: "nope"})
			return err
		}, rest: "DELETE /api/v1/clusters/nope",
	},
	{
		method: "vigil.deploy.v1.ClusterService/MapNamespace", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.clusters.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{Namespace: "matrix-" + w.name, Team: "web"}})
			return err
		}, rest: "POST /api/v1/namespaces", body: `{"namespace":"matrix-rest","team":"web"}`,
	},
	{
		method: "vigil.deploy.v1.ClusterService/UnmapNamespace", perm: auth.Admin, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.clusters.UnmapNamespace(ctx, &deployv1.UnmapNamespaceRequest{Namespace: "never-mapped"})
			return err
		}, rest: "DELETE /api/v1/namespaces/never-mapped",
	},
	{
		method: "vigil.deploy.v1.ClusterService/ListNamespaceMappings", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.clusters.ListNamespaceMappings(ctx, &deployv1.ListNamespaceMappingsRequest{})
			return err
		}, rest: "GET /api/v1/namespaces",
	},

	// Not built yet (repair, notify): an allowed call is Unimplemented,
	// after the checks. Playbooks are about kinds of incident: any
	// reader's.
	{
		method: "vigil.repair.v1.RepairService/ListRepairs", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.repairs.ListRepairs(ctx, &repairv1.ListRepairsRequest{})
			return err
		}, rest: "GET /api/v1/repairs",
	},
	{
		method: "vigil.repair.v1.RepairService/GetRepair", perm: auth.Read, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: noSuchID})
			return err
		},
	},
	{
		method: "vigil.repair.v1.RepairService/ApproveRepair", perm: auth.Operate, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.repairs.ApproveRepair(ctx, &repairv1.ApproveRepairRequest{Id: noSuchID})
			return err
		}, rest: "POST /api/v1/repairs/" + noSuchID + ":approve", body: `{}`,
	},
	{
		method: "vigil.repair.v1.RepairService/RejectRepair", perm: auth.Operate, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.repairs.RejectRepair(ctx, &repairv1.RejectRepairRequest{Id: noSuchID})
			return err
		},
	},
	{
		method: "vigil.repair.v1.RepairService/PostponeRepair", perm: auth.Operate, ok: []codes.Code{codes.NotFound},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.repairs.PostponeRepair(ctx, &repairv1.PostponeRepairRequest{Id: noSuchID})
			return err
		}, rest: "POST /api/v1/repairs/" + noSuchID + ":later", body: `{}`,
	},
	{
		method: "vigil.repair.v1.RepairService/GetGuardrails", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.repairs.GetGuardrails(ctx, &repairv1.GetGuardrailsRequest{})
			return err
		}, rest: "GET /api/v1/guardrails?scope=global",
	},
	{
		method: "vigil.repair.v1.RepairService/SetGuardrails", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.repairs.SetGuardrails(ctx, &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "global", MinConfidence: proto.Float64(0.85)}})
			return err
		}, rest: "PUT /api/v1/guardrails", body: `{"guardrails":{"scope":"global","min_confidence":0.85}}`,
	},
	// Channels: an operator manages their teams' channels (payments'
	// here) and their own; the service lists only those.
	{
		method: "vigil.notify.v1.ChannelService/ListChannels", perm: auth.Operate, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.channels.ListChannels(ctx, &notifyv1.ListChannelsRequest{})
			return err
		}, rest: "GET /api/v1/channels",
	},
	{
		method: "vigil.notify.v1.ChannelService/GetChannel", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			if err := c.paymentsChannel("pay-get"); err != nil {
				return err
			}
			_, err := c.channels.GetChannel(ctx, &notifyv1.GetChannelRequest{Name: "pay-get"})
			return err
		},
	},
	{
		method: "vigil.notify.v1.ChannelService/CreateChannel", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			_, err := c.channels.CreateChannel(ctx, paymentsChannel("pay-by-"+w.name))
			return err
		},
	},
	{
		method: "vigil.notify.v1.ChannelService/UpdateChannel", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			if err := c.paymentsChannel("pay-update"); err != nil {
				return err
			}
			_, err := c.channels.UpdateChannel(ctx, &notifyv1.UpdateChannelRequest{
				Channel: &notifyv1.Channel{Name: "pay-update", Language: "zh-TW"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"language"}}, NoTest: true,
			})
			return err
		},
	},
	{
		method: "vigil.notify.v1.ChannelService/DeleteChannel", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, w who) error {
			if err := c.paymentsChannel("pay-delete-" + w.name); err != nil {
				return err
			}
			_, err := c.channels.DeleteChannel(ctx, &notifyv1.DeleteChannelRequest{Name: "pay-delete-" + w.name})
			return err
		},
	},
	{
		// Answered OK whether or not the test message arrived (nothing
		// listens at its URL): the response says.
		method: "vigil.notify.v1.ChannelService/TestChannel", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			if err := c.paymentsChannel("pay-test"); err != nil {
				return err
			}
			_, err := c.channels.TestChannel(ctx, &notifyv1.TestChannelRequest{Name: "pay-test"})
			return err
		},
	},
	// An incident's messages are its team's to read, as the incident is.
	{
		method: "vigil.notify.v1.ChannelService/ListIncidentMessages", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.channels.ListIncidentMessages(ctx, &notifyv1.ListIncidentMessagesRequest{IncidentId: c.shopIncident})
			return err
		}, rest: "GET /api/v1/incidents/{shopIncident}/messages",
	},
	{
		method: "vigil.notify.v1.RouteService/GetRoutes", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.routes.GetRoutes(ctx, &notifyv1.GetRoutesRequest{})
			return err
		}, rest: "GET /api/v1/routes",
	},
	{
		method: "vigil.notify.v1.RouteService/TestRoutes", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.routes.TestRoutes(ctx, &notifyv1.TestRoutesRequest{Labels: map[string]string{"alertname": "X"}})
			return err
		}, rest: "POST /api/v1/routes:test", body: `{"labels":{"alertname":"X"}}`,
	},
	{
		method: "vigil.notify.v1.RouteService/ApplyRoutes", perm: auth.Admin, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			// Over whichever version is in force: the matrix applies
			// more than once.
			cur, err := c.routes.GetRoutes(c.admin, &notifyv1.GetRoutesRequest{})
			if err != nil {
				return err
			}
			_, err = c.routes.ApplyRoutes(ctx, &notifyv1.ApplyRoutesRequest{
				Config: &notifyv1.RoutingConfig{Route: &notifyv1.Route{}}, Version: cur.GetCurrent().GetVersion(),
			})
			return err
		},
	},
	{
		method: "vigil.deploy.v1.ClusterCredentialService/IssueClusterCredential", perm: auth.Internal, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.credentials.IssueClusterCredential(ctx, &deployv1.IssueClusterCredentialRequest{Access: deployv1.ClusterAccess_CLUSTER_ACCESS_READ})
			return err
		},
	},
	{
		method: "vigil.deploy.v1.RepairRollbackService/RollbackForRepair", perm: auth.Internal, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.rollbacks.RollbackForRepair(ctx, &deployv1.RollbackForRepairRequest{App: "shop", RepairId: noSuchID})
			return err
		},
	},
	{
		method: "vigil.deploy.v1.RepairRollbackService/ScaleForRepair", perm: auth.Internal, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.rollbacks.ScaleForRepair(ctx, &deployv1.ScaleForRepairRequest{App: "shop", RepairId: noSuchID, Replicas: 2})
			return err
		},
	},
	{
		method: "vigil.deploy.v1.RepairRollbackService/SetMemoryLimitForRepair", perm: auth.Internal, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.rollbacks.SetMemoryLimitForRepair(ctx, &deployv1.SetMemoryLimitForRepairRequest{App: "shop", RepairId: noSuchID, LimitBytes: 1 << 30})
			return err
		},
	},
	{
		method: "vigil.analysis.v1.AnalysisService/GetAnalysis", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.analyses.GetAnalysis(ctx, &analysisv1.GetAnalysisRequest{Id: c.shopAnalysis})
			return err
		},
		rest: "GET /api/v1/analyses/{shopAnalysis}",
	},
	{
		method: "vigil.analysis.v1.AnalysisService/ListAnalyses", perm: auth.Read, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.analyses.ListAnalyses(ctx, &analysisv1.ListAnalysesRequest{IncidentId: c.shopIncident})
			return err
		},
		rest: "GET /api/v1/analyses?incident_id={shopIncident}",
	},
	{
		method: "vigil.analysis.v1.AnalysisService/AnalyzeIncident", perm: auth.Operate, team: true, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.analyses.AnalyzeIncident(ctx, &analysisv1.AnalyzeIncidentRequest{IncidentId: c.shopIncident, Engine: "rules"})
			return err
		},
	},
	{
		method: "vigil.analysis.v1.AnalysisService/ListPlaybooks", perm: auth.Read, ok: []codes.Code{codes.OK},
		call: func(ctx context.Context, c *clients, _ who) error {
			_, err := c.analyses.ListPlaybooks(ctx, &analysisv1.ListPlaybooksRequest{})
			return err
		},
	},
}

// paymentsChannel asks for a webhook channel of team payments, stored
// without a test (nothing listens at its URL).
func paymentsChannel(name string) *notifyv1.CreateChannelRequest {
	return &notifyv1.CreateChannelRequest{Channel: &notifyv1.Channel{
		Name: name, Kind: "webhook", Target: "http://127.0.0.1:1/hook", Team: "payments",
	}, Credential: "matrix-webhook-secret", NoTest: true}
}

func matrixSource(name string) *gatewayv1.Source {
	return &gatewayv1.Source{Name: name, Type: "generic", Team: "payments", Auth: "key", Config: &gatewayv1.Source_Generic{
		Generic: &gatewayv1.GenericSource{Mapping: &gatewayv1.Mapping{Labels: map[string]string{"alertname": "body.name"}}},
	}}
}

// matrixSource declares source name of team payments, as the admin,
// unless it exists.
func (c *clients) matrixSource(name string) error {
	_, err := c.sources.CreateSource(c.admin, &gatewayv1.CreateSourceRequest{Source: matrixSource(name)})
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}

// paymentsChannel makes channel name of team payments, as the admin,
// unless it exists.
func (c *clients) paymentsChannel(name string) error {
	_, err := c.channels.CreateChannel(c.admin, paymentsChannel(name))
	if status.Code(err) == codes.AlreadyExists {
		return nil
	}
	return err
}

// password is a fixture user's password.
func password(user string) string { return "correct horse " + user + " battery" }

// expect is the code a caller must get: Unauthenticated without a valid
// credential, PermissionDenied without the permission or the team,
// otherwise one of the case's own codes.
func (m matrixCase) expect(w who) []codes.Code {
	switch {
	case m.perm == auth.Public:
		return m.ok
	case !w.authenticated():
		return []codes.Code{codes.Unauthenticated}
	case m.perm == auth.Internal:
		// Only Vigil's services, by their own keys: no person, no key
		// (TestServeAnalysisApartReadsClusters calls it as one).
		return []codes.Code{codes.PermissionDenied}
	case !slices.Contains(w.holds, m.perm) && !slices.Contains(w.holds, auth.Admin):
		return []codes.Code{codes.PermissionDenied}
	case m.team && !w.all && !slices.Contains(w.teams, "payments"):
		return []codes.Code{codes.PermissionDenied}
	}
	return m.ok
}

// TestAccessMatrix calls every RPC, over gRPC and (where mapped) REST, as
// every kind of caller on a `vigil up`-shaped process, and checks the
// answer: who may do what, 401 before anything else, 403 naming what is
// missing (over REST, before the body is read), lists filtered by team, and an audit entry for every mutating
// call with its result. It fails when an RPC of the policy has no case
// here.
func TestAccessMatrix(t *testing.T) {
	kube := testkit.SharedKube(t)
	kubeconfig, err := os.ReadFile(kube.Kubeconfig)
	require.NoError(t, err)
	dsn := testkit.Postgres(t)
	conns, admin := lockedBus(t)
	a := runApp(t, app.Options{
		Services: app.Services, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken,
		Monitor: monitor.Options{GroupBy: []string{"alertname", "namespace"}},
		Deploy:  deploy.Options{EncryptionKey: testKey(), DevCluster: &deploy.Cluster{Name: "dev", Kubeconfig: kubeconfig}},
		Notify:  notify.Options{EncryptionKey: testKey()},
		// Telegram is set up, Slack is not.
		Gateway: gateway.Options{TelegramWebhookSecret: telegramSecret},
	}, app.Deps{DatabaseURL: dsn, Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: testKeys(t)})

	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	as := func(token string) context.Context {
		if token == "" {
			return context.Background()
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	}
	c := &clients{
		alerts: gatewayv1.NewAlertServiceClient(conn), authn: gatewayv1.NewAuthServiceClient(conn),
		users: gatewayv1.NewUserServiceClient(conn), keys: gatewayv1.NewKeyServiceClient(conn),
		audit: gatewayv1.NewAuditServiceClient(conn), inc: monitorv1.NewIncidentServiceClient(conn),
		sil: monitorv1.NewSilenceServiceClient(conn), apps: deployv1.NewAppServiceClient(conn),
		clusters: deployv1.NewClusterServiceClient(conn), repairs: repairv1.NewRepairServiceClient(conn),
		channels: notifyv1.NewChannelServiceClient(conn), analyses: analysisv1.NewAnalysisServiceClient(conn),
		routes:      notifyv1.NewRouteServiceClient(conn),
		sources:     gatewayv1.NewSourceServiceClient(conn),
		credentials: deployv1.NewClusterCredentialServiceClient(conn),
		rollbacks:   deployv1.NewRepairRollbackServiceClient(conn),
		admin:       as(adminToken),
		oncall:      monitorv1.NewOnCallServiceClient(conn), escalation: monitorv1.NewEscalationServiceClient(conn),
		inhibition: monitorv1.NewInhibitionServiceClient(conn),
	}

	// Fixtures, as the bootstrap admin: four people, four keys, an app.
	login := func(name string, role gatewayv1.Role, teams ...string) string {
		_, err := c.users.CreateUser(c.admin, &gatewayv1.CreateUserRequest{
			User: &gatewayv1.User{Name: name, Role: role, Teams: teams}, Password: password(name),
		})
		require.NoError(t, err)
		r, err := c.authn.Login(context.Background(), &gatewayv1.LoginRequest{Username: name, Password: password(name)})
		require.NoError(t, err)
		return r.GetTokens().GetAccessToken()
	}
	newKey := func(name string, scope gatewayv1.Scope) (string, string) {
		r, err := c.keys.CreateKey(c.admin, &gatewayv1.CreateKeyRequest{Key: &gatewayv1.Key{
			Name: name, Scopes: []gatewayv1.Scope{scope}, Team: "payments",
		}})
		require.NoError(t, err)
		return r.GetSecret(), r.GetKey().GetId()
	}
	_, err = c.users.CreateUser(c.admin, &gatewayv1.CreateUserRequest{
		User: &gatewayv1.User{Name: "bob", Role: gatewayv1.Role_ROLE_VIEWER}, Password: password("bob"),
	})
	require.NoError(t, err)
	ingestKey, _ := newKey("alertmanager", gatewayv1.Scope_SCOPE_INGEST)
	readKey, _ := newKey("dashboards", gatewayv1.Scope_SCOPE_READ)
	expiredKey, expiredID := newKey("expired", gatewayv1.Scope_SCOPE_OPERATE)
	revokedKey, revokedID := newKey("revoked", gatewayv1.Scope_SCOPE_OPERATE)
	_, err = c.keys.RevokeKey(c.admin, &gatewayv1.RevokeKeyRequest{Id: revokedID})
	require.NoError(t, err)
	expireKey(t, dsn, expiredID)
	_, err = c.apps.CreateApp(c.admin, &deployv1.CreateAppRequest{App: shopApp("shop")})
	require.NoError(t, err)
	_, err = c.apps.CreateApp(c.admin, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: "blog", Framework: "flask", Plan: "basic", Image: "registry.example.com/blog:1", Owner: "web",
	}})
	require.NoError(t, err)

	alice := login("alice", gatewayv1.Role_ROLE_ADMIN)
	olga := login("olga", gatewayv1.Role_ROLE_OPERATOR, "payments")
	oscar := login("oscar", gatewayv1.Role_ROLE_OPERATOR, "web")
	vera := login("vera", gatewayv1.Role_ROLE_VIEWER, "payments")

	// An incident of app shop: its alert names the app, and monitor
	// learns from deploy's app.registered that shop is payments'.
	_, err = c.alerts.IngestAlerts(c.admin, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels: map[string]string{"alertname": "ShopDown", "namespace": "shop", "app": "shop"}, StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		r, err := c.inc.ListIncidents(c.admin, &monitorv1.ListIncidentsRequest{App: "shop"})
		if err != nil || len(r.GetIncidents()) == 0 {
			return false
		}
		c.shopIncident = r.GetIncidents()[0].GetId()
		_, err = c.inc.GetIncident(as(olga), &monitorv1.GetIncidentRequest{Id: c.shopIncident})
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "an incident of app shop, reachable by team payments")
	require.Eventually(t, func() bool {
		r, err := c.analyses.ListAnalyses(as(olga), &analysisv1.ListAnalysesRequest{IncidentId: c.shopIncident})
		if err != nil || len(r.GetAnalyses()) == 0 {
			return false
		}
		c.shopAnalysis = r.GetAnalyses()[0].GetId()
		return true
	}, 30*time.Second, 50*time.Millisecond, "the analysis of shop's incident, reachable by team payments")
	require.Eventually(t, func() bool {
		_, err := c.channels.ListIncidentMessages(as(olga), &notifyv1.ListIncidentMessagesRequest{IncidentId: c.shopIncident})
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "shop's incident known to notify, with its team")

	_, err = c.oncall.CreateSchedule(c.admin, &monitorv1.CreateScheduleRequest{Schedule: matrixSchedule("payments")})
	require.NoError(t, err)
	_, err = c.escalation.CreatePolicy(c.admin, &monitorv1.CreatePolicyRequest{Policy: matrixPolicy("payments")})
	require.NoError(t, err)

	callers := []who{
		{name: "admin", token: alice, holds: []auth.Permission{auth.Authenticated, auth.Admin}, all: true, actor: "user:alice"},
		{name: "operator", token: olga, holds: []auth.Permission{auth.Authenticated, auth.Read, auth.Operate}, teams: []string{"payments"}, actor: "user:olga"},
		{name: "other-operator", token: oscar, holds: []auth.Permission{auth.Authenticated, auth.Read, auth.Operate}, teams: []string{"web"}, actor: "user:oscar"},
		{name: "viewer", token: vera, holds: []auth.Permission{auth.Authenticated, auth.Read}, teams: []string{"payments"}, actor: "user:vera"},
		{name: "ingest-key", token: ingestKey, holds: []auth.Permission{auth.Authenticated, auth.Ingest}, teams: []string{"payments"}, actor: "key:alertmanager"},
		{name: "read-key", token: readKey, holds: []auth.Permission{auth.Authenticated, auth.Read}, teams: []string{"payments"}, actor: "key:dashboards"},
		{name: "expired-key", token: expiredKey},
		{name: "revoked-key", token: revokedKey},
		{name: "anonymous"},
	}

	// Every RPC of the policy has a case, and every case an RPC.
	var methods []string
	for m := range auth.Policy {
		if !strings.HasPrefix(m, "/grpc.") {
			methods = append(methods, strings.TrimPrefix(m, "/"))
		}
	}
	var covered []string
	for _, m := range matrix {
		covered = append(covered, m.method)
	}
	require.ElementsMatch(t, methods, covered, "every RPC needs a case in the access matrix")

	got := map[string]codes.Code{} // method + caller -> code, for the audit check
	for _, m := range matrix {
		for _, w := range callers {
			err := m.call(as(w.token), c, w)
			code := status.Code(err)
			got[m.method+" "+w.name] = code
			assert.Contains(t, m.expect(w), code, "%s as %s: %v", m.method, w.name, err)
			if code == codes.PermissionDenied && m.expect(w)[0] == codes.PermissionDenied {
				assert.Contains(t, status.Convert(err).Message(), w.actor, "%s as %s: a refusal names the caller", m.method, w.name)
			}
			if m.rest == "" {
				continue
			}
			verb, path, _ := strings.Cut(strings.NewReplacer("{shopIncident}", c.shopIncident, "{shopAnalysis}", c.shopAnalysis).Replace(m.rest), " ")
			httpCode := restCall(t, a, verb, path, m.body, w.token)
			switch m.expect(w)[0] {
			case codes.Unauthenticated:
				if m.perm != auth.Public {
					assert.Equal(t, http.StatusUnauthorized, httpCode, "%s as %s", m.rest, w.name)
				}
			case codes.PermissionDenied:
				assert.Equal(t, http.StatusForbidden, httpCode, "%s as %s", m.rest, w.name)
			default:
				assert.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, httpCode, "%s as %s", m.rest, w.name)
			}
			// The policy's permission is checked before the body is read:
			// a malformed body earns no 400 from who may not call the RPC
			// at all. (Checks that need the body, such as teams, come
			// after it is decoded.)
			if need := auth.Policy["/"+m.method].Permission; m.body != "" && w.authenticated() && need != auth.Public &&
				!slices.Contains(w.holds, need) && !slices.Contains(w.holds, auth.Admin) {
				assert.Equal(t, http.StatusForbidden, restCall(t, a, verb, path, `{"malformed":`, w.token),
					"%s as %s with a malformed body", m.rest, w.name)
			}
		}
	}

	// Lists are filtered by team.
	for _, w := range callers[:4] {
		r, err := c.apps.ListApps(as(w.token), &deployv1.ListAppsRequest{})
		require.NoError(t, err)
		for _, app := range r.GetApps() {
			if !w.all {
				assert.Contains(t, w.teams, app.GetOwner(), "%s sees app %s of %s", w.name, app.GetName(), app.GetOwner())
			}
		}
		if w.all {
			assert.Contains(t, appNames(r.GetApps()), "blog")
		}
	}
	for _, w := range callers[:4] {
		r, err := c.inc.ListIncidents(as(w.token), &monitorv1.ListIncidentsRequest{})
		require.NoError(t, err)
		var ids []string
		for _, inc := range r.GetIncidents() {
			ids = append(ids, inc.GetId())
		}
		if w.all || slices.Contains(w.teams, "payments") {
			assert.Contains(t, ids, c.shopIncident, "%s lists shop's incident", w.name)
		} else {
			assert.NotContains(t, ids, c.shopIncident, "%s lists another team's incident", w.name)
		}
	}
	for _, w := range callers[:4] {
		r, err := c.analyses.ListAnalyses(as(w.token), &analysisv1.ListAnalysesRequest{})
		require.NoError(t, err)
		var ids []string
		for _, a := range r.GetAnalyses() {
			ids = append(ids, a.GetId())
		}
		if w.all || slices.Contains(w.teams, "payments") {
			assert.Contains(t, ids, c.shopAnalysis, "%s lists the analysis of shop's incident", w.name)
		} else {
			assert.NotContains(t, ids, c.shopAnalysis, "%s lists another team's analysis", w.name)
		}
	}
	// Searching every alert is for those who reach every team.
	_, err = c.inc.ListAlerts(as(olga), &monitorv1.ListAlertsRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = c.inc.ListAlerts(as(alice), &monitorv1.ListAlertsRequest{})
	require.NoError(t, err)

	keys, err := c.keys.ListKeys(as(callers[2].token), &gatewayv1.ListKeysRequest{IncludeInactive: true})
	require.NoError(t, err)
	for _, k := range keys.GetKeys() {
		assert.Equal(t, "web", k.GetTeam(), "an operator of web lists only web's keys")
	}

	checkChatWebhooks(as(olga), t, a, c)

	// Every audited call made by an authenticated caller (and every
	// login) is in the audit log, with its result.
	var events []*gatewayv1.AuditEvent
	for tok := ""; ; {
		r, err := c.audit.ListAuditEvents(c.admin, &gatewayv1.ListAuditEventsRequest{PageSize: 500, PageToken: tok})
		require.NoError(t, err)
		events = append(events, r.GetEvents()...)
		if tok = r.GetNextPageToken(); tok == "" {
			break
		}
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.GetMethod()+" "+e.GetActor()+" "+e.GetCode()] = true
	}
	for _, m := range matrix {
		rule := auth.Policy["/"+m.method]
		if !rule.Audit {
			continue
		}
		for _, w := range callers {
			actor := w.actor
			if !w.authenticated() {
				if m.perm != auth.Public {
					continue
				}
				// A public call names whoever valid credentials name.
				actor = "anonymous"
			}
			if m.method == "vigil.gateway.v1.AuthService/Login" {
				actor = "user:vera" // a login names the user it logged in
			}
			code := got[m.method+" "+w.name]
			assert.True(t, seen[m.method+" "+actor+" "+code.String()], "audit: %s by %s (%s) missing", m.method, actor, code)
		}
	}
}

// telegramSecret is the matrix's VIGIL_TELEGRAM_WEBHOOK_SECRET.
const telegramSecret = "matrix_telegram-secret_0123456789abcdef"

// checkChatWebhooks: the chat webhooks take no API credentials but their
// senders' own; a user's link code, sent to the bot, links their account.
func checkChatWebhooks(user context.Context, t *testing.T, a *app.App, c *clients) {
	t.Helper()
	r, err := c.users.CreateChatLinkCode(user, &gatewayv1.CreateChatLinkCodeRequest{Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM})
	require.NoError(t, err)
	require.Contains(t, r.GetInstruction(), "/link "+r.GetCode())
	_, err = c.users.CreateChatLinkCode(user, &gatewayv1.CreateChatLinkCodeRequest{Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_SLACK})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "Slack is not set up: %v", err)

	post := func(path, secret, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+path, strings.NewReader(body))
		require.NoError(t, err)
		if secret != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	update := `{"update_id":1,"message":{"message_id":1,"date":1,"from":{"id":5551234,"is_bot":false,"first_name":"O"},` +
		`"chat":{"id":5551234,"type":"private"},"text":"/link ` + r.GetCode() + `"}}`
	code, _ := post("/api/v1/webhooks/telegram", "", update)
	require.Equal(t, http.StatusUnauthorized, code, "no secret token")
	code, body := post("/api/v1/webhooks/telegram", telegramSecret, update)
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `{"method":"sendMessage","chat_id":5551234,"text":"Linked to Vigil user olga."}`, body)
	u, err := c.users.GetUser(c.admin, &gatewayv1.GetUserRequest{Name: "olga"})
	require.NoError(t, err)
	require.Len(t, u.GetUser().GetChatIdentities(), 1)
	require.Equal(t, "5551234", u.GetUser().GetChatIdentities()[0].GetExternalId())
	// And the user sees it themselves, without being an admin.
	me, err := c.authn.WhoAmI(user, &gatewayv1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Len(t, me.GetUser().GetChatIdentities(), 1)
	code, body = post("/api/v1/webhooks/slack/commands", "", "command=%2Fvigil&text=link+X")
	require.Equal(t, http.StatusNotFound, code, "Slack is not set up: %s", body)
	code, body = post("/api/v1/webhooks/slack/interactions", "", "payload=%7B%7D")
	require.Equal(t, http.StatusNotFound, code, "Slack is not set up: %s", body)
}

func appNames(apps []*deployv1.App) []string {
	var out []string
	for _, a := range apps {
		out = append(out, a.GetName())
	}
	return out
}

// expireKey moves a key's expiry into the past, as time would.
func expireKey(t *testing.T, dsn, id string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	tag, err := conn.Exec(t.Context(), `UPDATE gateway.api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1`, id)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
}

func restCall(t *testing.T, a *app.App, verb, path, body, token string) int {
	t.Helper()
	req, err := http.NewRequest(verb, "http://"+a.HTTPAddr()+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
