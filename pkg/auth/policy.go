package auth

// Rule is what one RPC needs.
type Rule struct {
	// Permission the caller must hold (Principal.Has).
	Permission Permission
	// Team: what the call reaches belongs to an app, and the service that
	// holds it checks the app's team (CheckTeam: PermissionDenied naming
	// the team) and filters lists by it (Teams).
	Team bool
	// Audit: the call changes something (or is a login) and is written to
	// the audit log with its result.
	Audit bool
	// Target names what the call is done to in the audit log: text with
	// request fields in braces, "app/{name}", "user/{user.name}".
	Target string
	// Callers are the services an Internal RPC admits.
	Callers []string
}

var (
	read       = Rule{Permission: Read, Team: true}
	readGlobal = Rule{Permission: Read}
	adminRead  = Rule{Permission: Admin}
)

func operate(target string) Rule {
	return Rule{Permission: Operate, Team: true, Audit: true, Target: target}
}

func admin(target string) Rule { return Rule{Permission: Admin, Audit: true, Target: target} }

// Policy is the access policy of every RPC Vigil serves, by full method
// name. It is the one place where access is declared: Interceptor
// refuses a method it does not list, and TestEveryRPCHasAPolicy fails for
// a method of the contracts it does not list.
var Policy = map[string]Rule{
	// Orchestrators probe health without credentials.
	"/grpc.health.v1.Health/Check": {Permission: Public},
	"/grpc.health.v1.Health/Watch": {Permission: Public},
	"/grpc.health.v1.Health/List":  {Permission: Public},
	// The API's shape is no secret (the OpenAPI document is public), but
	// grpcurl and friends need a credential anyway.
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {Permission: Authenticated},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {Permission: Authenticated},

	// Alerts come from machines with an ingest key (or an admin). The
	// webhooks follow the same rule (services/gateway/internal/source).
	// Not audited: a storm is millions of calls, and every alert is on the
	// bus with its source anyway.
	"/vigil.gateway.v1.AlertService/IngestAlerts": {Permission: Ingest},

	"/vigil.gateway.v1.AuthService/Login":   {Permission: Public, Audit: true, Target: "user/{username}"},
	"/vigil.gateway.v1.AuthService/Refresh": {Permission: Public},
	// The refresh token is credential enough to end its own session,
	// whether or not the access token has expired.
	"/vigil.gateway.v1.AuthService/Logout": {Permission: Public, Audit: true, Target: "session"},
	"/vigil.gateway.v1.AuthService/WhoAmI": {Permission: Authenticated},

	"/vigil.gateway.v1.UserService/CreateUser": admin("user/{user.name}"),
	"/vigil.gateway.v1.UserService/GetUser":    adminRead,
	"/vigil.gateway.v1.UserService/ListUsers":  adminRead,
	"/vigil.gateway.v1.UserService/UpdateUser": admin("user/{user.name}"),
	// Anyone signed in, for their own password; the service lets only an
	// admin change another's.
	"/vigil.gateway.v1.UserService/SetPassword": {Permission: Authenticated, Audit: true, Target: "user/{name}"},
	// Chat accounts: an admin maps anyone's; a user unlinks their own
	// (the service lets only an admin unlink another's) and links their
	// own with a code they send to the bot (the service refuses keys and
	// the bootstrap token: they have no chat account).
	"/vigil.gateway.v1.UserService/LinkChatIdentity":   admin("user/{name}"),
	"/vigil.gateway.v1.UserService/UnlinkChatIdentity": {Permission: Authenticated, Audit: true, Target: "user/{name}"},
	"/vigil.gateway.v1.UserService/CreateChatLinkCode": {Permission: Authenticated, Audit: true, Target: "chat-link-code"},

	// Operators manage the keys of their teams (the service checks the
	// team and that the scopes do not exceed the caller's).
	"/vigil.gateway.v1.KeyService/CreateKey": operate("key/{key.name}"),
	"/vigil.gateway.v1.KeyService/ListKeys":  {Permission: Operate, Team: true},
	"/vigil.gateway.v1.KeyService/RevokeKey": operate("key/{id}"),

	"/vigil.gateway.v1.AuditService/ListAuditEvents": adminRead,

	// Declared webhook sources (services/gateway/internal/source): a
	// source may send alerts of its team, or of every team, so only an
	// admin declares one. Test is a dry run, but shows what a stored
	// mapping makes of any body: admins' too.
	"/vigil.gateway.v1.SourceService/ListSources":  adminRead,
	"/vigil.gateway.v1.SourceService/GetSource":    adminRead,
	"/vigil.gateway.v1.SourceService/CreateSource": admin("source/{source.name}"),
	"/vigil.gateway.v1.SourceService/UpdateSource": admin("source/{source.name}"),
	"/vigil.gateway.v1.SourceService/DeleteSource": admin("source/{name}"),
	"/vigil.gateway.v1.SourceService/TestSource":   adminRead,

	"/vigil.monitor.v1.IncidentService/ListIncidents":       read,
	"/vigil.monitor.v1.IncidentService/GetIncident":         read,
	"/vigil.monitor.v1.IncidentService/AcknowledgeIncident": operate("incident/{id}"),
	"/vigil.monitor.v1.IncidentService/ResolveIncident":     operate("incident/{id}"),
	"/vigil.monitor.v1.IncidentService/ListAlerts":          read,

	// Silences select alerts by labels, not by app: an operator's silence
	// mutes what its matchers match, whatever the team.
	"/vigil.monitor.v1.SilenceService/CreateSilence": {Permission: Operate, Audit: true, Target: "silence"},
	"/vigil.monitor.v1.SilenceService/GetSilence":    readGlobal,
	"/vigil.monitor.v1.SilenceService/ListSilences":  readGlobal,
	"/vigil.monitor.v1.SilenceService/ExpireSilence": {Permission: Operate, Audit: true, Target: "silence/{id}"},

	// Escalation (docs/escalation.md): schedules and policies belong to a
	// team, whose operators change them (monitor checks the stored team);
	// everyone reads who is on call; the priority rules are the admins'.
	"/vigil.monitor.v1.IncidentService/EscalateIncident":    operate("incident/{id}"),
	"/vigil.monitor.v1.IncidentService/SnoozeIncident":      operate("incident/{id}"),
	"/vigil.monitor.v1.IncidentService/SetIncidentPriority": operate("incident/{id}"),
	"/vigil.monitor.v1.OnCallService/CreateSchedule":        operate("schedule/{schedule.name}"),
	"/vigil.monitor.v1.OnCallService/GetSchedule":           readGlobal,
	"/vigil.monitor.v1.OnCallService/ListSchedules":         readGlobal,
	"/vigil.monitor.v1.OnCallService/UpdateSchedule":        operate("schedule/{schedule.name}"),
	"/vigil.monitor.v1.OnCallService/DeleteSchedule":        operate("schedule/{name}"),
	"/vigil.monitor.v1.OnCallService/AddOverride":           operate("schedule/{schedule}{team}"),
	"/vigil.monitor.v1.OnCallService/WhoIsOnCall":           readGlobal,
	"/vigil.monitor.v1.OnCallService/ListShifts":            readGlobal,
	"/vigil.monitor.v1.EscalationService/CreatePolicy":      operate("escalation-policy/{policy.name}"),
	"/vigil.monitor.v1.EscalationService/GetPolicy":         readGlobal,
	"/vigil.monitor.v1.EscalationService/ListPolicies":      readGlobal,
	"/vigil.monitor.v1.EscalationService/UpdatePolicy":      operate("escalation-policy/{policy.name}"),
	"/vigil.monitor.v1.EscalationService/DeletePolicy":      operate("escalation-policy/{name}"),
	"/vigil.monitor.v1.EscalationService/GetPriorityRules":  readGlobal,
	"/vigil.monitor.v1.EscalationService/SetPriorityRules":  admin("priority-rules"),

	// Inhibition rules (docs/noise.md#inhibition) hold back any team's
	// alerts: the admins' to change, everyone's to read.
	"/vigil.monitor.v1.InhibitionService/GetInhibitionRules":   readGlobal,
	"/vigil.monitor.v1.InhibitionService/ApplyInhibitionRules": admin("inhibition-rules"),

	"/vigil.deploy.v1.AppService/CreateApp":       operate("app/{app.name}"),
	"/vigil.deploy.v1.AppService/GetApp":          read,
	"/vigil.deploy.v1.AppService/ListApps":        read,
	"/vigil.deploy.v1.AppService/UpdateApp":       operate("app/{app.name}"),
	"/vigil.deploy.v1.AppService/DeleteApp":       operate("app/{name}"),
	"/vigil.deploy.v1.AppService/DeployApp":       operate("app/{name}"),
	"/vigil.deploy.v1.AppService/RollbackApp":     operate("app/{name}"),
	"/vigil.deploy.v1.AppService/WatchDeployment": read,
	"/vigil.deploy.v1.AppService/GetDeployment":   read,
	"/vigil.deploy.v1.AppService/ListDeployments": read,
	"/vigil.deploy.v1.AppService/RenderApp":       read,

	// Clusters hold the keys to production: admins only. Their names and
	// versions are no secret to a reader.
	"/vigil.deploy.v1.ClusterService/AddCluster":    admin("cluster/{name}"),
	"/vigil.deploy.v1.ClusterService/ListClusters":  readGlobal,
	"/vigil.deploy.v1.ClusterService/RemoveCluster": admin("cluster/{name}"),
	// Who owns a namespace decides whose its incidents are: admins only.
	// Every reader may see the mappings (whose is this namespace?).
	"/vigil.deploy.v1.ClusterService/MapNamespace":          admin("namespace/{mapping.namespace}"),
	"/vigil.deploy.v1.ClusterService/UnmapNamespace":        admin("namespace/{namespace}"),
	"/vigil.deploy.v1.ClusterService/ListNamespaceMappings": readGlobal,
	// Short-lived credentials of Vigil's own accounts in a cluster, for
	// the services in other processes that need them (ADR 8): never a
	// person's, not even an admin's. The deploy service hands each caller
	// only its own account (analysis: read; repair: repair).
	"/vigil.deploy.v1.ClusterCredentialService/IssueClusterCredential": {Permission: Internal, Callers: []string{"analysis", "repair"}},
	// Vigil's own apps are rolled back, scaled and given memory through
	// the deployer, for the repair service in another process.
	"/vigil.deploy.v1.RepairRollbackService/RollbackForRepair":       {Permission: Internal, Callers: []string{"repair"}},
	"/vigil.deploy.v1.RepairRollbackService/ScaleForRepair":          {Permission: Internal, Callers: []string{"repair"}},
	"/vigil.deploy.v1.RepairRollbackService/SetMemoryLimitForRepair": {Permission: Internal, Callers: []string{"repair"}},

	"/vigil.repair.v1.RepairService/ListRepairs":   read,
	"/vigil.repair.v1.RepairService/GetRepair":     read,
	"/vigil.repair.v1.RepairService/ApproveRepair": operate("repair/{id}"),
	"/vigil.repair.v1.RepairService/RejectRepair":  operate("repair/{id}"),
	// Later on an approval card: snooze it.
	"/vigil.repair.v1.RepairService/PostponeRepair": operate("repair/{id}"),
	// Guardrails decide what runs without a person: reading them is no
	// app's data; changing them is an admin's.
	"/vigil.repair.v1.RepairService/GetGuardrails": readGlobal,
	"/vigil.repair.v1.RepairService/SetGuardrails": admin("guardrails/{guardrails.scope}"),

	// Channels: admins manage every channel; an operator the channels of
	// their teams and their own personal channels (notify checks which,
	// and lists only those). Vigil-wide channels and the environment's are
	// admins' alone.
	"/vigil.notify.v1.ChannelService/ListChannels":  {Permission: Operate},
	"/vigil.notify.v1.ChannelService/GetChannel":    {Permission: Operate, Team: true},
	"/vigil.notify.v1.ChannelService/CreateChannel": operate("channel/{channel.name}"),
	"/vigil.notify.v1.ChannelService/UpdateChannel": operate("channel/{channel.name}"),
	"/vigil.notify.v1.ChannelService/DeleteChannel": operate("channel/{name}"),
	"/vigil.notify.v1.ChannelService/TestChannel":   operate("channel/{name}"),
	// What the channels were told of an incident: whoever reads the
	// incident's team (notify checks it).
	"/vigil.notify.v1.ChannelService/ListIncidentMessages": read,
	// Who hears what is no secret to those who hear it; changing it is an
	// admin's.
	"/vigil.notify.v1.RouteService/GetRoutes":   readGlobal,
	"/vigil.notify.v1.RouteService/TestRoutes":  readGlobal,
	"/vigil.notify.v1.RouteService/ApplyRoutes": admin("routes"),

	"/vigil.analysis.v1.AnalysisService/GetAnalysis":  read,
	"/vigil.analysis.v1.AnalysisService/ListAnalyses": read,
	// Analysing again reads the cluster and may spend LLM budget: an
	// operator's act, on their team's incident.
	"/vigil.analysis.v1.AnalysisService/AnalyzeIncident": operate("incident/{incident_id}"),
	// What repairs did, by kind of incident: no app's data.
	"/vigil.analysis.v1.AnalysisService/ListPlaybooks": readGlobal,
}
