package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
)

func runApp(t testing.TB, opts app.Options, deps app.Deps) *app.App {
	t.Helper()
	if opts.Streams == (bus.StreamOptions{}) {
		opts.Streams = testkit.TestStreams
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, opts, deps)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return a
}

// `vigil serve gateway` and `vigil serve monitor` as two processes: alerts
// ingested over gRPC at the gateway become incidents in monitor, and the
// gateway answers incident calls by forwarding them, as the caller.
func TestServeGatewayAndMonitorApart(t *testing.T) {
	dsn := testkit.Postgres(t)
	// Each process logs in to the locked bus as its service's own user.
	b := testkit.LockedNATS(t)
	ncM, jsM := b.Conn(t, "monitor")
	ncG, jsG := b.Conn(t, "gateway")
	keys := testKeys(t)
	base := app.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, Streams: testkit.TestStreams}

	monOpts := base
	monOpts.Services = []string{"monitor"}
	mon := runApp(t, monOpts, app.Deps{DatabaseURL: dsn, NATS: ncM, JetStream: jsM, Logger: testkit.Logger(t), Keys: keys.Verifier()})

	ncD, jsD := b.Conn(t, "deploy")
	depOpts := base
	depOpts.Services = []string{"deploy"}
	depOpts.Deploy = deploy.Options{EncryptionKey: testKey()}
	dep := runApp(t, depOpts, app.Deps{DatabaseURL: dsn, NATS: ncD, JetStream: jsD, Logger: testkit.Logger(t), Keys: keys.Verifier()})

	ncN, jsN := b.Conn(t, "notify")
	nfyOpts := base
	nfyOpts.Services = []string{"notify"}
	nfy := runApp(t, nfyOpts, app.Deps{DatabaseURL: dsn, NATS: ncN, JetStream: jsN, Logger: testkit.Logger(t), Keys: keys.Verifier()})

	gwOpts := base
	gwOpts.Services = []string{"gateway"}
	gwOpts.MonitorAddr = mon.GRPCAddr()
	gwOpts.DeployAddr = dep.GRPCAddr()
	gwOpts.NotifyAddr = nfy.GRPCAddr()
	gw := runApp(t, gwOpts, app.Deps{DatabaseURL: dsn, NATS: ncG, JetStream: jsG, Logger: testkit.Logger(t), Keys: keys})

	conn, err := grpc.NewClient(gw.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	alerts := gatewayv1.NewAlertServiceClient(conn)
	_, err = alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{
		{Labels: map[string]string{"alertname": "PodCrashLooping", "namespace": "shop"}, StartsAt: timestamppb.Now()},
	}})
	require.NoError(t, err)

	incidents := monitorv1.NewIncidentServiceClient(conn)
	require.Eventually(t, func() bool {
		resp, err := incidents.ListIncidents(ctx, &monitorv1.ListIncidentsRequest{})
		require.NoError(t, err)
		return len(resp.GetIncidents()) == 1 && resp.GetIncidents()[0].GetTitle() == "PodCrashLooping in shop"
	}, 30*time.Second, 100*time.Millisecond)

	// Without credentials the gateway refuses; so does monitor itself.
	_, err = incidents.ListIncidents(context.Background(), &monitorv1.ListIncidentsRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	monConn, err := grpc.NewClient(mon.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = monConn.Close() })
	_, err = monitorv1.NewIncidentServiceClient(monConn).ListIncidents(context.Background(), &monitorv1.ListIncidentsRequest{})
	assert.Equal(t, codes.Unauthenticated, status.Code(err))

	// Bad input: InvalidArgument naming each field.
	_, err = alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{}}})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	assert.ElementsMatch(t, []string{"alerts[0].labels", "alerts[0].starts_at"}, fields)

	// Routes through the forwarder to notify: applied as the caller,
	// refused field by field.
	routes := notifyv1.NewRouteServiceClient(conn)
	applied, err := routes.ApplyRoutes(ctx, &notifyv1.ApplyRoutesRequest{Config: &notifyv1.RoutingConfig{Route: &notifyv1.Route{
		Routes: []*notifyv1.Route{{Teams: []string{"payments"}, RepeatInterval: "4h"}},
	}}})
	require.NoError(t, err)
	assert.Equal(t, "admin", applied.GetApplied().GetAppliedBy())
	_, err = routes.ApplyRoutes(ctx, &notifyv1.ApplyRoutesRequest{Version: 1, Config: &notifyv1.RoutingConfig{Route: &notifyv1.Route{
		Routes: []*notifyv1.Route{{Matchers: []string{`a=~"("`}}},
	}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	tested, err := routes.TestRoutes(ctx, &notifyv1.TestRoutesRequest{Team: "payments"})
	require.NoError(t, err)
	assert.Equal(t, int64(1), tested.GetVersion())
	assert.Equal(t, "route.routes[0]", tested.GetMatches()[0].GetPath())

	// An unknown incident is NotFound through the forwarder, not Internal.
	_, err = incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: "01a20236-f568-7af1-9546-d3f52f62c45a"})
	assert.Equal(t, codes.NotFound, status.Code(err))

	// The deploy API through the gateway, streams included: register the
	// test control plane, onboard an app, follow its deployment.
	k := testkit.SharedKube(t)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	_, err = deployv1.NewClusterServiceClient(conn).AddCluster(ctx, &deployv1.AddClusterRequest{Name: "main", Kubeconfig: kubeconfig})
	require.NoError(t, err)
	apps := deployv1.NewAppServiceClient(conn)
	_, err = apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{Name: "apart", Framework: "go", Plan: "basic"}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "no image: refused, through the forwarder")
	_, err = apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: "apart", Framework: "go", Plan: "basic", Image: "registry.example.com/apart:1",
	}})
	require.NoError(t, err)
	stream, err := apps.DeployApp(ctx, &deployv1.DeployAppRequest{Name: "apart"})
	require.NoError(t, err)
	var last *deployv1.Deployment
	updates := 0
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		last, updates = m.GetDeployment(), updates+1
	}
	require.NotNil(t, last)
	assert.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, last.GetStatus(), last.GetReason())
	assert.Greater(t, updates, 1, "the steps streamed as they happened")
}

// `vigil serve analysis` in its own process reads the clusters deploy (in
// another) registered: it asks deploy, as the analysis service by its own
// key, for a short-lived token of Vigil's read-only account; nobody else
// may ask, and the token reads but cannot touch Secrets (ADR 8).
func TestServeAnalysisApartReadsClusters(t *testing.T) {
	dsn := testkit.Postgres(t)
	b := testkit.LockedNATS(t)
	keys := testKeys(t)
	analysisPub, analysisKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	repairPub, repairKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	base := app.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, Streams: testkit.TestStreams}

	ncD, jsD := b.Conn(t, "deploy")
	depOpts := base
	depOpts.Services = []string{"deploy"}
	depOpts.Deploy = deploy.Options{EncryptionKey: testKey()}
	dep := runApp(t, depOpts, app.Deps{
		DatabaseURL: dsn, NATS: ncD, JetStream: jsD, Logger: testkit.Logger(t), Keys: keys.Verifier(),
		Peers: map[string]ed25519.PublicKey{"analysis": analysisPub, "repair": repairPub},
	})

	ncA, jsA := b.Conn(t, "analysis")
	anOpts := base
	anOpts.Services = []string{"analysis"}
	anOpts.DeployAddr = dep.GRPCAddr()
	an := runApp(t, anOpts, app.Deps{
		DatabaseURL: dsn, NATS: ncA, JetStream: jsA, Logger: testkit.Logger(t), Keys: keys.Verifier(), ServiceKey: analysisKey,
	})

	ncM, jsM := b.Conn(t, "monitor")
	ncG, jsG := b.Conn(t, "gateway")
	gwOpts := base
	gwOpts.Services = []string{"monitor", "gateway"}
	gwOpts.DeployAddr, gwOpts.AnalysisAddr = dep.GRPCAddr(), an.GRPCAddr()
	gw := runApp(t, gwOpts, app.Deps{
		DatabaseURL: dsn, Logger: testkit.Logger(t), Keys: keys,
		Bus: map[string]app.Conn{"monitor": {NATS: ncM, JetStream: jsM}, "gateway": {NATS: ncG, JetStream: jsG}},
	})

	conn, err := grpc.NewClient(gw.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)

	k := testkit.SharedKube(t)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	_, err = deployv1.NewClusterServiceClient(conn).AddCluster(ctx, &deployv1.AddClusterRequest{Name: "main", Kubeconfig: kubeconfig})
	require.NoError(t, err)

	// A workload Vigil did not deploy, crash-looping.
	ns := k.Namespace(t)
	replicas := int32(1)
	labels := map[string]string{"app": "mailer"}
	_, err = k.Clientset.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "mailer"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "crash.kwok.invalid/mailer:1"}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pods, err := k.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=mailer"})
		require.NoError(t, err)
		for _, p := range pods.Items {
			for _, c := range p.Status.ContainerStatuses {
				if c.RestartCount > 0 {
					return true
				}
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "the pod crashes")

	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels:   map[string]string{"alertname": "KubeDeploymentReplicasMismatch", "namespace": ns, "deployment": "mailer"},
		StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)

	analyses := analysisv1.NewAnalysisServiceClient(conn)
	var got *analysisv1.Analysis
	require.Eventually(t, func() bool {
		resp, err := analyses.ListAnalyses(ctx, &analysisv1.ListAnalysesRequest{})
		require.NoError(t, err)
		if len(resp.GetAnalyses()) == 0 {
			return false
		}
		got = resp.GetAnalyses()[0]
		return true
	}, time.Minute, 200*time.Millisecond)
	assert.NotContains(t, got.GetGaps(), "cluster: no cluster access in this process")
	var sources []string
	for _, e := range got.GetEvidence() {
		sources = append(sources, e.GetSource())
	}
	assert.Contains(t, sources, "kubernetes:pod", "the analysis read the workload's pods: %v (gaps %v)", sources, got.GetGaps())
	assert.Equal(t, "Deployment", got.GetProposal().GetTarget().GetKind(), "resolved to the workload: %v", got.GetProposal())
	assert.Equal(t, "mailer", got.GetProposal().GetTarget().GetName())

	// Deploy's internal API: nobody but the analysis service, by its key.
	depConn, err := grpc.NewClient(dep.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = depConn.Close() })
	creds := deployv1.NewClusterCredentialServiceClient(depConn)
	read := &deployv1.IssueClusterCredentialRequest{Access: deployv1.ClusterAccess_CLUSTER_ACCESS_READ}
	_, err = creds.IssueClusterCredential(ctx, read)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "the bootstrap admin token is the gateway's: %v", err)
	_, err = creds.IssueClusterCredential(context.Background(), read)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	_, strangerKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	stranger := metadataFor(t, auth.ServiceIdentity{Name: "analysis", Key: strangerKey, Audience: "deploy"})
	_, err = creds.IssueClusterCredential(stranger, read)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "a key deploy does not know: %v", err)

	// Each call its own assertion: deploy accepts each once.
	asAnalysis := func() context.Context {
		return metadataFor(t, auth.ServiceIdentity{Name: "analysis", Key: analysisKey, Audience: "deploy"})
	}
	_, err = creds.IssueClusterCredential(asAnalysis(), &deployv1.IssueClusterCredentialRequest{Access: deployv1.ClusterAccess_CLUSTER_ACCESS_UNSPECIFIED})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "analysis gets its own account only: %v", err)
	_, err = creds.IssueClusterCredential(asAnalysis(), &deployv1.IssueClusterCredentialRequest{Cluster: "nope", Access: deployv1.ClusterAccess_CLUSTER_ACCESS_READ})
	assert.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	cred, err := creds.IssueClusterCredential(asAnalysis(), read)
	require.NoError(t, err)
	assert.Equal(t, "main", cred.GetCluster())
	assert.WithinDuration(t, time.Now().Add(15*time.Minute), cred.GetExpireTime().AsTime(), 2*time.Minute)
	reader, err := kubernetes.NewForConfig(&rest.Config{
		Host: cred.GetServer(), BearerToken: cred.GetToken(),
		TLSClientConfig: rest.TLSClientConfig{CAData: cred.GetCertificateAuthorityData(), ServerName: cred.GetTlsServerName()},
	})
	require.NoError(t, err)
	_, err = reader.AppsV1().Deployments(ns).Get(context.Background(), "mailer", metav1.GetOptions{})
	require.NoError(t, err, "the token reads workloads")
	_, err = reader.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "no Secrets: %v", err)
	err = reader.AppsV1().Deployments(ns).Delete(context.Background(), "mailer", metav1.DeleteOptions{})
	assert.True(t, apierrors.IsForbidden(err), "nothing writable: %v", err)

	// The repair service gets the repair account: it may patch a
	// Deployment, still no Secrets; analysis may not ask for it.
	repairAccess := &deployv1.IssueClusterCredentialRequest{Access: deployv1.ClusterAccess_CLUSTER_ACCESS_REPAIR}
	_, err = creds.IssueClusterCredential(asAnalysis(), repairAccess)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "analysis asking for the repair account: %v", err)
	asRepair := func() context.Context {
		return metadataFor(t, auth.ServiceIdentity{Name: "repair", Key: repairKey, Audience: "deploy"})
	}
	_, err = creds.IssueClusterCredential(asRepair(), read)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "repair asking for the read account: %v", err)
	cred, err = creds.IssueClusterCredential(asRepair(), repairAccess)
	require.NoError(t, err)
	repairer, err := kubernetes.NewForConfig(&rest.Config{
		Host: cred.GetServer(), BearerToken: cred.GetToken(),
		TLSClientConfig: rest.TLSClientConfig{CAData: cred.GetCertificateAuthorityData(), ServerName: cred.GetTlsServerName()},
	})
	require.NoError(t, err)
	scaleUp := []byte(`{"spec":{"replicas":2}}`)
	_, err = repairer.AppsV1().Deployments(ns).Patch(context.Background(), "mailer", types.MergePatchType, scaleUp, metav1.PatchOptions{})
	assert.True(t, apierrors.IsForbidden(err), "not in a namespace never granted to repairs: %v", err)
	// Granted as an admin's namespace mapping grants it: the repair
	// account patches the Deployment, within the admission policy.
	require.NoError(t, kubeaccess.Grants{Admin: k.Clientset}.Grant(context.Background(), ns, kubeaccess.SourceTeam))
	require.Eventually(t, func() bool {
		_, err = repairer.AppsV1().Deployments(ns).Patch(context.Background(), "mailer", types.MergePatchType, scaleUp, metav1.PatchOptions{})
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the repair account patches Deployments where granted: %v", err)
	_, err = repairer.AppsV1().Deployments(ns).Patch(context.Background(), "mailer", types.MergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"vigil.dev/test":"1"}}}}}`), metav1.PatchOptions{})
	assert.True(t, apierrors.IsForbidden(err), "the admission policy: only the fields repairs change: %v", err)
	mailer, err := k.Clientset.AppsV1().Deployments(ns).Get(context.Background(), "mailer", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotContains(t, mailer.Spec.Template.Annotations, "vigil.dev/test", "refused, not applied")
	assert.Equal(t, int32(2), *mailer.Spec.Replicas)
	_, err = repairer.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "no Secrets: %v", err)

	// Vigil's apps roll back through deploy, for the repair service only.
	rollbacks := deployv1.NewRepairRollbackServiceClient(depConn)
	req := &deployv1.RollbackForRepairRequest{App: "no-such-app", RepairId: bus.NewID()}
	_, err = rollbacks.RollbackForRepair(asAnalysis(), req)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "analysis: %v", err)
	_, err = rollbacks.RollbackForRepair(ctx, req)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "the bootstrap admin token is the gateway's: %v", err)
	_, err = rollbacks.RollbackForRepair(asRepair(), req)
	assert.Equal(t, codes.NotFound, status.Code(err), "repair, for an app Vigil does not deploy: %v", err)
	_, err = rollbacks.RollbackForRepair(asRepair(), &deployv1.RollbackForRepairRequest{})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))

	// So are they scaled and given memory; a value outside the app's
	// bounds names its field.
	scale := &deployv1.ScaleForRepairRequest{App: "no-such-app", RepairId: bus.NewID(), Replicas: 2}
	_, err = rollbacks.ScaleForRepair(asAnalysis(), scale)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "analysis: %v", err)
	_, err = rollbacks.ScaleForRepair(ctx, scale)
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "the bootstrap admin token is the gateway's: %v", err)
	_, err = rollbacks.ScaleForRepair(asRepair(), scale)
	assert.Equal(t, codes.NotFound, status.Code(err), "repair, for an app Vigil does not deploy: %v", err)
	_, err = rollbacks.ScaleForRepair(asRepair(), &deployv1.ScaleForRepairRequest{App: "no-such-app", RepairId: bus.NewID()})
	assert.Equal(t, []string{"replicas"}, violations(err), "%v", err)
	memory := &deployv1.SetMemoryLimitForRepairRequest{App: "no-such-app", RepairId: bus.NewID(), LimitBytes: 1 << 30}
	_, err = rollbacks.SetMemoryLimitForRepair(asAnalysis(), memory)
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "analysis: %v", err)
	_, err = rollbacks.SetMemoryLimitForRepair(asRepair(), memory)
	assert.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = rollbacks.SetMemoryLimitForRepair(asRepair(), &deployv1.SetMemoryLimitForRepairRequest{App: "no-such-app", RepairId: bus.NewID(), Container: "sidecar", LimitBytes: 1 << 30})
	assert.Equal(t, []string{"container"}, violations(err), "%v", err)
}

// violations are the fields an InvalidArgument names.
func violations(err error) []string {
	if status.Code(err) != codes.InvalidArgument {
		return nil
	}
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// metadataFor is a context carrying what creds send.
func metadataFor(t *testing.T, creds credentials.PerRPCCredentials) context.Context {
	t.Helper()
	md, err := creds.GetRequestMetadata(context.Background())
	require.NoError(t, err)
	return metadata.NewOutgoingContext(context.Background(), metadata.New(md))
}
