package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
)

// A deployment that Postgres went away under, after deploy had claimed
// it, is carried to its end once Postgres is back: the consumer's try in
// place resumes it, instead of finding it running and leaving it so for
// ever (which kept a repair's rollback waiting on it in the chaos test).
func TestDeploymentOutlivesAPostgresOutage(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	pg := testkit.OwnPostgres(t)
	logs := &testkit.Logs{}
	f := newFixtureOn(t, deploy.Options{RolloutTimeout: 3 * time.Second}, pg.DSN("postgres"), logs.Logger())
	f.addCluster(t, "main", k)
	name := uniqueName("outage-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: kubedev.UnreadyImageHost + "/api:1",
	}})
	require.NoError(t, err)
	s, err := f.apps.DeployApp(t.Context(), &deployv1.DeployAppRequest{Name: name})
	require.NoError(t, err)
	first, err := s.Recv()
	require.NoError(t, err)
	id := first.GetDeployment().GetId()
	status := func() string {
		var st string
		if err := f.pool.QueryRow(t.Context(), `SELECT status FROM deployments WHERE id::text = $1`, id).Scan(&st); err != nil {
			return err.Error()
		}
		return st
	}
	// Its pods never get ready: the rollout waits, RolloutTimeout long.
	require.Eventually(t, func() bool { return status() == "running" }, time.Minute, 20*time.Millisecond)

	pg.Stop()
	require.Eventually(t, func() bool {
		for _, l := range logs.Take(t) {
			if l["msg"] == "dependency unavailable: holding events and retrying until it is back" && l["consumer"] == "deploy" {
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "the deployment's run failed on Postgres")
	pg.Start()

	require.Eventually(t, func() bool { return status() == "failed" }, time.Minute, 100*time.Millisecond, "ended, not left running")
	d, err := f.apps.GetDeployment(t.Context(), &deployv1.GetDeploymentRequest{Id: id})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(d.GetDeployment().GetReason(), "Timeout:"), d.GetDeployment().GetReason())
}
