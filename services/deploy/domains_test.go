package deploy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// requireDomainTaken checks err is AlreadyExists with a field violation
// on app.domain naming the app that serves it.
func requireDomainTaken(t *testing.T, err error, host, holder string) {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, codes.AlreadyExists, st.Code(), "%v", err)
	v := server.Violations(st)
	require.Len(t, v, 1, "%v", err)
	assert.Equal(t, "app.domain", v[0].Field)
	assert.Contains(t, v[0].Description, host)
	assert.Contains(t, v[0].Description, "app "+holder)
	var reason string
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			reason = ei.GetReason()
			assert.Equal(t, holder, ei.GetMetadata()["app"])
		}
	}
	assert.Equal(t, "DOMAIN_TAKEN", reason)
}

func (f *fixture) app(t *testing.T, name string) *deployv1.App {
	t.Helper()
	r, err := f.apps.GetApp(t.Context(), &deployv1.GetAppRequest{Name: name})
	require.NoError(t, err)
	return r.GetApp()
}

// One host, one app: another app may not take an app's domain, whatever
// its case or trailing dot, at creation, by an update or by rolling back
// to a revision that served it; the refusal names the app that has it,
// and neither app changes.
func TestDomainsAreUniqueAcrossApps(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	shop, other := uniqueName("shop-"), uniqueName("other-")
	host := shop + ".example.com"

	r, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: shop, Framework: "static", Plan: "basic", Image: "nginx:1.27", Domain: "Shop-" + shop[len("shop-"):] + ".Example.COM.",
	}})
	require.NoError(t, err)
	require.Equal(t, host, r.GetApp().GetDomain(), "stored as a host compares: lowercase, no trailing dot")
	before := f.app(t, shop)

	for _, d := range []string{host, "SHOP-" + shop[len("shop-"):] + ".example.com", host + "."} {
		_, err = f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
			Name: other, Framework: "static", Plan: "basic", Image: "nginx:1.27", Domain: d,
		}})
		requireDomainTaken(t, err, host, shop)
		_, err = f.apps.GetApp(t.Context(), &deployv1.GetAppRequest{Name: other})
		require.Equal(t, codes.NotFound, status.Code(err), "%s: nothing created", d)
	}

	_, err = f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: other, Framework: "static", Plan: "basic", Image: "nginx:1.27", Domain: other + ".example.com",
	}})
	require.NoError(t, err)
	otherBefore := f.app(t, other)
	_, err = f.apps.UpdateApp(t.Context(), &deployv1.UpdateAppRequest{
		App: &deployv1.App{Name: other, Domain: host + "."}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"domain"}},
	})
	requireDomainTaken(t, err, host, shop)
	require.True(t, proto.Equal(otherBefore, f.app(t, other)), "the app that asked is unchanged")
	require.True(t, proto.Equal(before, f.app(t, shop)), "the app that has the domain is unchanged")

	// other served its own host at revision 1; shop takes that host once
	// other lets it go; other's rollback to revision 1 would take it back.
	d := f.deploy(t, other, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	_, err = f.apps.UpdateApp(t.Context(), &deployv1.UpdateAppRequest{
		App: &deployv1.App{Name: other, Domain: "elsewhere-" + other + ".example.com"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"domain"}},
	})
	require.NoError(t, err)
	_, err = f.apps.UpdateApp(t.Context(), &deployv1.UpdateAppRequest{
		App: &deployv1.App{Name: shop, Domain: other + ".example.com"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"domain"}},
	})
	require.NoError(t, err, "a domain no app serves any more is free")
	before, otherBefore = f.app(t, shop), f.app(t, other)
	s, err := f.apps.RollbackApp(t.Context(), &deployv1.RollbackAppRequest{Name: other, ToRevision: 1})
	require.NoError(t, err)
	_, err = s.Recv()
	requireDomainTaken(t, err, other+".example.com", shop)
	require.True(t, proto.Equal(otherBefore, f.app(t, other)), "the rolled-back app is unchanged")
	require.True(t, proto.Equal(before, f.app(t, shop)), "the app that has the domain is unchanged")
	deps, err := f.apps.ListDeployments(t.Context(), &deployv1.ListDeploymentsRequest{App: other})
	require.NoError(t, err)
	require.Len(t, deps.GetDeployments(), 1, "no rollback recorded")
}
