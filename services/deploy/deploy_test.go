package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/deploy"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const token = "test-admin-token-0123456789"

type fixture struct {
	apps     deployv1.AppServiceClient
	clusters deployv1.ClusterServiceClient
	pool     *pgxpool.Pool
	js       jetstream.JetStream
	key      []byte
	svc      *deploy.Service
	addr     string
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// newFixture runs the deploy service on its own database and JetStream,
// serving its API over real gRPC with the admin token required.
func newFixture(t *testing.T, rollout time.Duration) *fixture {
	t.Helper()
	return newFixtureWith(t, deploy.Options{RolloutTimeout: rollout})
}

// newFixtureWith is newFixture with opts (a random encryption key).
func newFixtureWith(t *testing.T, opts deploy.Options) *fixture {
	t.Helper()
	return newFixtureOn(t, opts, testkit.Postgres(t), testkit.Logger(t))
}

// newFixtureOn is newFixtureWith on the database dsn, logging to log.
func newFixtureOn(t *testing.T, opts deploy.Options, dsn string, log *slog.Logger) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := db.Open(ctx, dsn, deploy.Schema)
	require.NoError(t, err)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	// Small streams: each test's server reserves their size on disk.
	require.NoError(t, bus.Provision(ctx, js, testkit.TestStreams))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	opts.EncryptionKey = key
	svc, err := deploy.New(ctx, opts, deploy.Deps{
		Pool: pool, JetStream: js, Publisher: bus.NewPublisher(js, nil), Logger: log,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()

	authn := people
	// As pkg/server builds it: the error interceptors first.
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(server.UnaryErrors(testkit.Logger(t)), auth.UnaryInterceptor(authn)),
		grpc.ChainStreamInterceptor(server.StreamErrors(testkit.Logger(t)), auth.StreamInterceptor(authn)))
	svc.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(token)))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		gs.Stop()
		cancel()
		require.NoError(t, <-done)
		pool.Close()
	})
	return &fixture{apps: deployv1.NewAppServiceClient(conn), clusters: deployv1.NewClusterServiceClient(conn), pool: pool, js: js, key: key, svc: svc, addr: lis.Addr().String()}
}

// people are the fixture's callers: the bootstrap admin (token), and an
// operator of each of teams a and b.
var people = peopleAuth{
	token:      {Kind: auth.KindBootstrap, Name: "admin", Role: auth.RoleAdmin, AllTeams: true, Unowned: true},
	"ann-of-a": {Kind: auth.KindUser, Name: "ann", Role: auth.RoleOperator, Teams: []string{"team-a"}},
	"bob-of-b": {Kind: auth.KindUser, Name: "bob", Role: auth.RoleOperator, Teams: []string{"team-b"}},
}

type peopleAuth map[string]auth.Principal

func (p peopleAuth) Authenticate(_ context.Context, secret string) (auth.Principal, error) {
	if who, ok := p[secret]; ok {
		return who, nil
	}
	return auth.Principal{}, auth.ErrUnauthenticated
}

// appsAs is the fixture's AppService as the caller of secret.
func (f *fixture) appsAs(t *testing.T, secret string) deployv1.AppServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(secret)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return deployv1.NewAppServiceClient(conn)
}

func (f *fixture) addCluster(t *testing.T, name string, k *testkit.Kube) {
	t.Helper()
	b, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	resp, err := f.clusters.AddCluster(t.Context(), &deployv1.AddClusterRequest{Name: name, Kubeconfig: b})
	require.NoError(t, err)
	assert.Equal(t, kubedev.Version, resp.GetCluster().GetVersion())
}

// last reads a DeployApp or RollbackApp stream to its end and returns the
// deployment as it ended.
func last[M any, P interface {
	*M
	GetDeployment() *deployv1.Deployment
}](t *testing.T, s grpc.ServerStreamingClient[M], err error) *deployv1.Deployment {
	t.Helper()
	require.NoError(t, err)
	var out *deployv1.Deployment
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			require.NotNil(t, out)
			return out
		}
		require.NoError(t, err)
		out = P(m).GetDeployment()
	}
}

func (f *fixture) deploy(t *testing.T, name, image string) *deployv1.Deployment {
	t.Helper()
	s, err := f.apps.DeployApp(t.Context(), &deployv1.DeployAppRequest{Name: name, Image: image})
	return last(t, s, err)
}

func (f *fixture) rollback(t *testing.T, name string, to int64) *deployv1.Deployment {
	t.Helper()
	s, err := f.apps.RollbackApp(t.Context(), &deployv1.RollbackAppRequest{Name: name, ToRevision: to})
	return last(t, s, err)
}

func steps(d *deployv1.Deployment) map[string]deployv1.StepStatus {
	out := map[string]deployv1.StepStatus{}
	for _, s := range d.GetSteps() {
		out[s.GetName()] = s.GetStatus()
	}
	return out
}

func liveImage(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d.Spec.Template.Spec.Containers[0].Image
}

// uniqueName gives each test its own app name on the shared control plane.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	const hex = "0123456789abcdef"
	var s strings.Builder
	s.WriteString(prefix)
	for _, c := range b {
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

// Onboarding a flask app in one call: every step recorded, every object
// live and correct, the rollout available; then revision 2 with a new
// image, and a rollback to revision 1 recorded as revision 3.
func TestOnboardDeployAndRollBack(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("shop-")
	created, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{
		App: &deployv1.App{
			Name: name, Framework: "flask", Plan: "standard", Image: "registry.example.com/shop:1.0.0",
			Domain: name + ".example.com", Env: map[string]string{"LOG_LEVEL": "info"}, Owner: "team-a",
		},
		Secrets: map[string]string{"DATABASE_PASSWORD": "hunter2"},
	})
	require.NoError(t, err)
	app := created.GetApp()
	assert.Equal(t, "main", app.GetCluster(), "the only cluster")
	assert.Equal(t, name, app.GetNamespace())
	assert.Equal(t, []string{"DATABASE_PASSWORD"}, app.GetSecretNames())

	d1 := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d1.GetStatus(), d1.GetReason())
	assert.Equal(t, int64(1), d1.GetRevision())
	assert.Equal(t, map[string]deployv1.StepStatus{
		"create_namespace":     deployv1.StepStatus_STEP_STATUS_DONE,
		"apply_config":         deployv1.StepStatus_STEP_STATUS_DONE,
		"deploy_app":           deployv1.StepStatus_STEP_STATUS_DONE,
		"configure_ingress":    deployv1.StepStatus_STEP_STATUS_DONE,
		"setup_tls":            deployv1.StepStatus_STEP_STATUS_DONE,
		"configure_monitoring": deployv1.StepStatus_STEP_STATUS_SKIPPED, // no Prometheus Operator CRDs here
		"enable_auto_repair":   deployv1.StepStatus_STEP_STATUS_SKIPPED,
		"wait_rollout":         deployv1.StepStatus_STEP_STATUS_DONE,
	}, steps(d1))

	// The live objects, as the API server has them.
	cs, ctx := k.Clientset, t.Context()
	ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "vigil", ns.Labels["app.kubernetes.io/managed-by"])
	dep, err := cs.AppsV1().Deployments(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), *dep.Spec.Replicas, "the standard plan's replicas")
	assert.Equal(t, int32(2), dep.Status.AvailableReplicas)
	c := dep.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "registry.example.com/shop:1.0.0", c.Image)
	assert.Equal(t, "500m", c.Resources.Requests.Cpu().String())
	assert.Equal(t, "512Mi", c.Resources.Requests.Memory().String())
	assert.NotNil(t, c.ReadinessProbe)
	assert.NotNil(t, c.LivenessProbe)
	assert.NotNil(t, c.StartupProbe)
	assert.Equal(t, 0, dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue())
	assert.True(t, *dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
	managers := map[string]bool{}
	for _, mf := range dep.ManagedFields {
		managers[mf.Manager] = true
	}
	assert.True(t, managers["vigil"], "applied server-side by field manager vigil")

	cm, err := cs.CoreV1().ConfigMaps(name).Get(ctx, name+"-config", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "info", cm.Data["LOG_LEVEL"])
	sec, err := cs.CoreV1().Secrets(name).Get(ctx, name+"-secrets", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "hunter2", string(sec.Data["DATABASE_PASSWORD"]))
	svc, err := cs.CoreV1().Services(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, dep.Spec.Selector.MatchLabels, svc.Spec.Selector)
	ing, err := cs.NetworkingV1().Ingresses(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, name+".example.com", ing.Spec.Rules[0].Host)
	require.Len(t, ing.Spec.TLS, 1)
	assert.Equal(t, []string{name + ".example.com"}, ing.Spec.TLS[0].Hosts)
	assert.Equal(t, "letsencrypt", ing.Annotations["cert-manager.io/cluster-issuer"])
	_, err = cs.NetworkingV1().NetworkPolicies(name).Get(ctx, name+"-isolation", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = cs.PolicyV1().PodDisruptionBudgets(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	_, err = cs.CoreV1().ServiceAccounts(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)

	// Revision 2: a new image, after revision 1 has served a while (what
	// a rollback returns to is a revision all of whose replicas were
	// ready for the settle time; the deployment records it).
	workloadtest.Settled(t, cs, name, name, 1, 2)
	d2 := f.deploy(t, name, "registry.example.com/shop:2.0.0")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d2.GetStatus(), d2.GetReason())
	assert.Equal(t, int64(2), d2.GetRevision())
	assert.Equal(t, "registry.example.com/shop:2.0.0", liveImage(t, cs, name, name))

	// Rollback: revision 1's image again, recorded as revision 3.
	d3 := f.rollback(t, name, 0)
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d3.GetStatus(), d3.GetReason())
	assert.Equal(t, int64(3), d3.GetRevision())
	assert.Equal(t, deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK, d3.GetKind())
	assert.Equal(t, int64(1), d3.GetRollbackTo())
	assert.Equal(t, "registry.example.com/shop:1.0.0", d3.GetImage())
	assert.Equal(t, d1.GetConfigHash(), d3.GetConfigHash())
	assert.Equal(t, "registry.example.com/shop:1.0.0", liveImage(t, cs, name, name))
	got, err := f.apps.GetApp(ctx, &deployv1.GetAppRequest{Name: name})
	require.NoError(t, err)
	assert.Equal(t, "registry.example.com/shop:1.0.0", got.GetApp().GetImage(), "the app itself returned to revision 1")
	assert.Equal(t, int64(3), got.GetApp().GetCurrentRevision())

	hist, err := f.apps.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: name})
	require.NoError(t, err)
	var revs []int64
	for _, d := range hist.GetDeployments() {
		revs = append(revs, d.GetRevision())
		assert.Equal(t, "admin", d.GetRequestedBy())
		assert.NotNil(t, d.GetDuration())
	}
	assert.Equal(t, []int64{3, 2, 1}, revs)

	// The events, as consumers see them.
	subjects := streamSubjects(t, f.js, "DEPLOYS")
	assert.Equal(t, 3, subjects[bus.SubjectDeployRequested])
	assert.Equal(t, 2, subjects[bus.SubjectDeploySucceeded])
	assert.Equal(t, 1, subjects[bus.SubjectDeployRolledBack])
	assert.Equal(t, 3*2*8, subjects[bus.SubjectDeployProgress], "running and an outcome for each of 8 steps of 3 deployments")
	assert.Equal(t, 1, streamSubjects(t, f.js, "APPS")[bus.SubjectAppRegistered])
	// Each names the app's team, by which notify routes deploy.*.
	teams := map[string]int{}
	for _, ev := range streamEvents(t, f.js, "DEPLOYS") {
		teams[ev.(interface{ GetTeam() string }).GetTeam()]++
	}
	assert.Equal(t, map[string]int{"team-a": 3 + 2 + 1 + 3*2*8}, teams)

	rendered, err := f.apps.RenderApp(ctx, &deployv1.RenderAppRequest{Name: name})
	require.NoError(t, err)
	assert.Contains(t, rendered.GetYaml(), "kind: Deployment")
	assert.NotContains(t, rendered.GetYaml(), "hunter2", "render leaves secret values out")
}

// streamSubjects counts a stream's messages by subject.
func streamSubjects(t *testing.T, js jetstream.JetStream, stream string) map[string]int {
	t.Helper()
	var out map[string]int
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s, err := js.Stream(context.Background(), stream)
		require.NoError(c, err)
		info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(">"))
		require.NoError(c, err)
		out = map[string]int{}
		for k, v := range info.State.Subjects {
			out[k] = int(v)
		}
		// The outbox relay publishes shortly after each commit.
		assert.NotZero(c, out[bus.SubjectDeployRequested]+out[bus.SubjectAppRegistered])
	}, 10*time.Second, 100*time.Millisecond)
	return out
}

// streamEvents are the events stored in stream, decoded.
func streamEvents(t *testing.T, js jetstream.JetStream, stream string) []bus.Event {
	t.Helper()
	ctx := t.Context()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	var out []bus.Event
	for range info.NumPending {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		evs, err := bus.Decode(m.Subject(), m.Data())
		require.NoError(t, err)
		out = append(out, evs...)
	}
	return out
}

// A rollout whose pods never become ready fails with the reason, as does
// one whose image cannot be pulled; and the app's last good revision stays
// current.
func TestFailedRolloutsSayWhy(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 15*time.Second)
	f.addCluster(t, "main", k)

	unready := uniqueName("unready-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: unready, Framework: "go", Plan: "basic", Image: kubedev.UnreadyImageHost + "/api:1",
	}})
	require.NoError(t, err)
	d := f.deploy(t, unready, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus())
	assert.True(t, strings.HasPrefix(d.GetReason(), "Timeout:"), d.GetReason())
	assert.Contains(t, d.GetReason(), "not ready")
	assert.Equal(t, deployv1.StepStatus_STEP_STATUS_FAILED, steps(d)["wait_rollout"])

	nopull := uniqueName("nopull-")
	_, err = f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: nopull, Framework: "nodejs", Plan: "basic", Image: kubedev.PullFailImageHost + "/web:1",
	}})
	require.NoError(t, err)
	d = f.deploy(t, nopull, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus())
	assert.True(t, strings.HasPrefix(d.GetReason(), "ImagePullBackOff:"), d.GetReason())

	app, err := f.apps.GetApp(t.Context(), &deployv1.GetAppRequest{Name: nopull})
	require.NoError(t, err)
	assert.Zero(t, app.GetApp().GetCurrentRevision(), "no revision succeeded")
	s, err := f.apps.RollbackApp(t.Context(), &deployv1.RollbackAppRequest{Name: nopull})
	require.NoError(t, err)
	_, err = s.Recv()
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "nothing to roll back to")
}

// A deploy.requested from another service (no deployment_id) that is
// delivered twice, as after a lost ack, makes one deployment, and the
// second delivery is acknowledged rather than retried into the DLQ.
func TestRedeliveredExternalRequestDeploysOnce(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("again-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/api:1",
	}})
	require.NoError(t, err)

	ctx := t.Context()
	e := &eventsv1.DeployRequested{Meta: bus.NewMeta("deploy", nil), App: name, Image: "registry.example.com/api:2", RequestedBy: "repair"}
	m, err := bus.Encode(ctx, e)
	require.NoError(t, err)
	// Two copies past JetStream's own dedup (a different Nats-Msg-Id).
	for _, id := range []string{"first-copy", "second-copy"} {
		m.ID = id
		require.NoError(t, bus.NewPublisher(f.js, nil).PublishMessages(ctx, m))
	}

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		info, err := f.js.Consumer(ctx, "DEPLOYS", "deploy")
		require.NoError(c, err)
		// Both copies and the deploy.requested the first one announced,
		// each delivered once.
		assert.Equal(c, uint64(3), info.CachedInfo().Delivered.Consumer)
		assert.Zero(c, info.CachedInfo().NumAckPending)
		assert.Zero(c, info.CachedInfo().NumPending)
	}, 30*time.Second, 100*time.Millisecond)
	list, err := f.apps.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: name})
	require.NoError(t, err)
	require.Len(t, list.GetDeployments(), 1)
	d := list.GetDeployments()[0]
	assert.Equal(t, e.GetMeta().GetId(), d.GetId())
	assert.Equal(t, "registry.example.com/api:2", d.GetImage())
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, err := f.apps.GetDeployment(ctx, &deployv1.GetDeploymentRequest{Id: d.GetId()})
		require.NoError(c, err)
		assert.Equal(c, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, got.GetDeployment().GetStatus())
	}, 30*time.Second, 100*time.Millisecond)
	dlq, err := f.js.Stream(ctx, "DLQ")
	require.NoError(t, err)
	assert.Zero(t, dlq.CachedInfo().State.Msgs)
}

// Two clusters each receive only the apps that target them. The second
// has the Prometheus Operator's CRDs, so its app gets a ServiceMonitor and
// a PrometheusRule.
func TestAppsGoToTheirCluster(t *testing.T) {
	t.Parallel()
	one, two := testkit.SharedKube(t), testkit.NewKube(t)
	two.InstallMonitoringCRDs(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "one", one)
	f.addCluster(t, "two", two)

	a, b := uniqueName("a-"), uniqueName("b-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{Name: a, Framework: "static", Plan: "basic", Image: "nginx:1.27"}})
	require.Error(t, err, "two clusters: the app must name one")
	assertField(t, err, "app.cluster")

	for _, app := range []*deployv1.App{
		{Name: a, Framework: "static", Plan: "basic", Image: "nginx:1.27", Cluster: "one"},
		{Name: b, Framework: "go", Plan: "basic", Image: "registry.example.com/b:1", Cluster: "two"},
	} {
		_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: app})
		require.NoError(t, err)
		d := f.deploy(t, app.GetName(), "")
		require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
		monitoring := deployv1.StepStatus_STEP_STATUS_SKIPPED
		if app.GetCluster() == "two" {
			monitoring = deployv1.StepStatus_STEP_STATUS_DONE
		}
		assert.Equal(t, monitoring, steps(d)["configure_monitoring"], app.GetCluster())
	}
	rules, err := dynamic.NewForConfigOrDie(two.Config).Resource(schema.GroupVersionResource{
		Group: "monitoring.coreos.com", Version: "v1", Resource: "prometheusrules",
	}).Namespace(b).Get(t.Context(), b, metav1.GetOptions{})
	require.NoError(t, err)
	groups, _, _ := unstructured.NestedSlice(rules.Object, "spec", "groups")
	require.Len(t, groups, 1)
	for _, r := range groups[0].(map[string]any)["rules"].([]any) {
		labels := r.(map[string]any)["labels"].(map[string]any)
		assert.Equal(t, b, labels["app"], "alerts carry the app, for monitor to group by")
		assert.Equal(t, b, labels["namespace"])
	}
	has := func(k *testkit.Kube, ns string) bool {
		_, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false
		}
		require.NoError(t, err)
		return true
	}
	assert.True(t, has(one, a))
	assert.False(t, has(one, b))
	assert.True(t, has(two, b))
	assert.False(t, has(two, a))

	_, err = f.clusters.RemoveCluster(t.Context(), &deployv1.RemoveClusterRequest{Name: "two"})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "an app targets it")
	_, err = f.apps.DeleteApp(t.Context(), &deployv1.DeleteAppRequest{Name: b, DeleteResources: true})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		ns, err := two.Clientset.CoreV1().Namespaces().Get(context.Background(), b, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			require.NoError(c, err)
			assert.Equal(c, corev1.NamespaceTerminating, ns.Status.Phase)
		}
	}, 30*time.Second, 100*time.Millisecond)
	_, err = f.clusters.RemoveCluster(t.Context(), &deployv1.RemoveClusterRequest{Name: "two"})
	require.NoError(t, err)
}

// A cluster that went away fails the deployment with a clear reason, and
// the deployment is recorded whole (every step accounted for).
func TestUnreachableClusterFailsTheDeployment(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	gone, err := kubedev.Start(t.Context(), kubedev.Options{BinDir: testkit.KubeBinDir(), Dir: t.TempDir()})
	require.NoError(t, err)
	b, err := os.ReadFile(gone.Kubeconfig)
	require.NoError(t, err)
	_, err = f.clusters.AddCluster(t.Context(), &deployv1.AddClusterRequest{Name: "gone", Kubeconfig: b})
	require.NoError(t, err)
	gone.Stop()

	name := uniqueName("lost-")
	_, err = f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/x:1"}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus())
	assert.Contains(t, d.GetReason(), "127.0.0.1", "names the API server it could not reach")
	assert.Equal(t, deployv1.StepStatus_STEP_STATUS_FAILED, steps(d)["create_namespace"])
	for _, s := range d.GetSteps()[1:] {
		assert.Equal(t, deployv1.StepStatus_STEP_STATUS_PENDING, s.GetStatus(), s.GetName())
	}

	// And a kubeconfig whose API server does not answer is refused.
	_, err = f.clusters.AddCluster(t.Context(), &deployv1.AddClusterRequest{Name: "gone2", Kubeconfig: b})
	assertField(t, err, "kubeconfig")
}

func assertField(t *testing.T, err error, field string) {
	t.Helper()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	var fields []string
	for _, v := range server.Violations(status.Convert(err)) {
		fields = append(fields, v.Field)
	}
	assert.Contains(t, fields, field, "%v", err)
}

// Bad input is InvalidArgument naming the field, and nothing is written.
func TestInvalidInputWritesNothing(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, time.Minute)
	f.addCluster(t, "main", k)
	good := func() *deployv1.App {
		return &deployv1.App{Name: "ok", Framework: "django", Plan: "basic", Image: "registry.example.com/ok:1"}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*deployv1.App)
		field string
	}{
		{"name not DNS-1123", func(a *deployv1.App) { a.Name = "Shop_1" }, "app.name"},
		{"name starting with a digit", func(a *deployv1.App) { a.Name = "1shop" }, "app.name"},
		{"name missing", func(a *deployv1.App) { a.Name = "" }, "app.name"},
		{"reserved name", func(a *deployv1.App) { a.Name = "kube-system" }, "app.name"},
		{"unknown framework", func(a *deployv1.App) { a.Framework = "rails" }, "app.framework"},
		{"unknown plan", func(a *deployv1.App) { a.Plan = "enterprise" }, "app.plan"},
		{"missing image", func(a *deployv1.App) { a.Image = "" }, "app.image"},
		{"bad image", func(a *deployv1.App) { a.Image = "Registry/Shop latest" }, "app.image"},
		{"invalid domain", func(a *deployv1.App) { a.Domain = "*.example.com" }, "app.domain"},
		{"domain without dot", func(a *deployv1.App) { a.Domain = "localhost" }, "app.domain"},
		{"privileged port", func(a *deployv1.App) { a.Port = 80 }, "app.port"},
		{"bad env name", func(a *deployv1.App) { a.Env = map[string]string{"1X": "y"} }, "app.env[1X]"},
		{"unknown cluster", func(a *deployv1.App) { a.Cluster = "nope" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good()
			tc.edit(a)
			_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: a})
			if tc.field == "" {
				require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
				return
			}
			assertField(t, err, tc.field)
		})
	}
	list, err := f.apps.ListApps(t.Context(), &deployv1.ListAppsRequest{})
	require.NoError(t, err)
	assert.Empty(t, list.GetApps(), "nothing written")

	_, err = f.clusters.AddCluster(t.Context(), &deployv1.AddClusterRequest{Name: "x", Kubeconfig: []byte("not: [a kubeconfig")})
	assertField(t, err, "kubeconfig")
	_, err = f.clusters.AddCluster(t.Context(), &deployv1.AddClusterRequest{Name: "x", Kubeconfig: []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", certificate-authority: /etc/ca.crt}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {exec: {command: /bin/sh, apiVersion: client.authentication.k8s.io/v1}}}]
current-context: c
`)})
	assertField(t, err, "kubeconfig")
	clusters, err := f.clusters.ListClusters(t.Context(), &deployv1.ListClustersRequest{})
	require.NoError(t, err)
	assert.Len(t, clusters.GetClusters(), 1)

	_, err = f.apps.UpdateApp(t.Context(), &deployv1.UpdateAppRequest{
		App: &deployv1.App{Name: "ok", Cluster: "two"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"cluster"}},
	})
	assertField(t, err, "update_mask")
}

// Secrets and kubeconfigs are unreadable in the database without the key,
// and the API never returns secret values.
func TestSecretsAreSealedAtRest(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, time.Minute)
	f.addCluster(t, "main", k)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	const secret = "s3cr3t-value-for-the-test"
	_, err = f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{
		App:     &deployv1.App{Name: "vault", Framework: "go", Plan: "basic", Image: "registry.example.com/v:1"},
		Secrets: map[string]string{"TOKEN": secret},
	})
	require.NoError(t, err)

	// Everything the deploy schema holds, as text, holds neither.
	var dump string
	require.NoError(t, f.pool.QueryRow(t.Context(), `SELECT
		(SELECT string_agg(t::text, ' ') FROM apps t) || (SELECT string_agg(encode(secrets_sealed, 'escape'), ' ') FROM apps) ||
		(SELECT string_agg(t::text, ' ') FROM clusters t) || (SELECT string_agg(encode(kubeconfig_sealed, 'escape'), ' ') FROM clusters)`).Scan(&dump))
	assert.NotContains(t, dump, secret)
	assert.NotContains(t, dump, "TOKEN\":", "not even as JSON")
	keyPEM := keyFromKubeconfig(t, kubeconfig)
	assert.NotContains(t, dump, keyPEM)
	assert.False(t, bytes.Contains([]byte(dump), []byte("BEGIN EC PRIVATE KEY")), "no private key in the clear")

	// The API answers with names only.
	got, err := f.apps.GetApp(t.Context(), &deployv1.GetAppRequest{Name: "vault"})
	require.NoError(t, err)
	assert.Equal(t, []string{"TOKEN"}, got.GetApp().GetSecretNames())

	// Another key cannot open them: a second service on the same schema
	// with a different key fails to read the app.
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	require.NotEqual(t, f.key, other)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	svc, err := deploy.New(t.Context(), deploy.Options{EncryptionKey: other}, deploy.Deps{
		Pool: f.pool, JetStream: js, Publisher: bus.NewPublisher(js, nil), Logger: testkit.Logger(t),
	})
	require.NoError(t, err)
	// Answered as the gRPC server answers it: through the error
	// interceptor, which masks what failed.
	getApp := func(ctx context.Context, req any) (any, error) {
		return svc.AppServer().GetApp(ctx, req.(*deployv1.GetAppRequest))
	}
	_, err = server.UnaryErrors(testkit.Logger(t))(t.Context(), &deployv1.GetAppRequest{Name: "vault"},
		&grpc.UnaryServerInfo{FullMethod: deployv1.AppService_GetApp_FullMethodName}, getApp)
	assert.Equal(t, codes.Internal, status.Code(err))
}

func keyFromKubeconfig(t *testing.T, kubeconfig []byte) string {
	t.Helper()
	i := bytes.Index(kubeconfig, []byte("client-key-data: "))
	require.GreaterOrEqual(t, i, 0)
	rest := kubeconfig[i+len("client-key-data: "):]
	return string(rest[:bytes.IndexByte(rest, '\n')])
}

// A redeploy leaves the Ingress's TLS alone, and what an app no longer
// has (its domain, its secrets, its plan's autoscaler) is deleted from the
// cluster by the next deploy.
func TestRedeployKeepsTLSAndPrunes(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("prune-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{
		App: &deployv1.App{
			Name: name, Framework: "go", Plan: "advanced", Image: "registry.example.com/p:1", Domain: name + ".example.com",
		},
		Secrets: map[string]string{"TOKEN": "t"},
	})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	cs, ctx := k.Clientset, t.Context()
	ing, err := cs.NetworkingV1().Ingresses(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, ing.Spec.TLS, 1)
	_, err = cs.AutoscalingV2().HorizontalPodAutoscalers(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)

	d = f.deploy(t, name, "registry.example.com/p:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	again, err := cs.NetworkingV1().Ingresses(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, ing.Generation, again.Generation, "the Ingress did not change, not even for a moment")
	assert.Len(t, again.Spec.TLS, 1)

	_, err = f.apps.UpdateApp(ctx, &deployv1.UpdateAppRequest{
		App:           &deployv1.App{Name: name, Plan: "basic"},
		UpdateMask:    &fieldmaskpb.FieldMask{Paths: []string{"plan", "domain"}},
		RemoveSecrets: []string{"TOKEN"},
	})
	require.NoError(t, err)
	d = f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	messages := map[string]string{}
	for _, s := range d.GetSteps() {
		messages[s.GetName()] = s.GetMessage()
	}
	assert.Contains(t, messages["configure_ingress"], "deleted Ingress/"+name)
	assert.Contains(t, messages["apply_config"], "deleted Secret/"+name+"-secrets")
	assert.Contains(t, messages["deploy_app"], "deleted HorizontalPodAutoscaler/"+name)
	gone := func(err error) bool { return apierrors.IsNotFound(err) }
	_, err = cs.NetworkingV1().Ingresses(name).Get(ctx, name, metav1.GetOptions{})
	assert.True(t, gone(err), "%v", err)
	_, err = cs.CoreV1().Secrets(name).Get(ctx, name+"-secrets", metav1.GetOptions{})
	assert.True(t, gone(err), "%v", err)
	_, err = cs.AutoscalingV2().HorizontalPodAutoscalers(name).Get(ctx, name, metav1.GetOptions{})
	assert.True(t, gone(err), "%v", err)
	dep, err := cs.AppsV1().Deployments(name).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(1), *dep.Spec.Replicas, "the basic plan's replicas, set by Vigil again")
}
