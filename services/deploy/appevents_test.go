package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
)

// The app events others keep a projection from (monitor: which team an
// app belongs to): app.updated with the new owner, app.deleted, and
// app.updated for every app when the service starts again, from the
// deploy producer.
func TestAppEventsCarryTheOwner(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, time.Minute)
	f.addCluster(t, "main", k)
	ctx := t.Context()
	keep, gone := uniqueName("keep-"), uniqueName("gone-")
	for _, name := range []string{keep, gone} {
		_, err := f.apps.CreateApp(ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
			Name: name, Framework: "flask", Plan: "basic", Image: "registry.example.com/a:1", Owner: "payments",
		}})
		require.NoError(t, err)
	}
	_, err := f.apps.UpdateApp(ctx, &deployv1.UpdateAppRequest{
		App: &deployv1.App{Name: keep, Owner: "web"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"owner"}},
	})
	require.NoError(t, err)
	_, err = f.apps.DeleteApp(ctx, &deployv1.DeleteAppRequest{Name: gone})
	require.NoError(t, err)

	owners := func() (updated map[string][]string, deleted []string) {
		updated = map[string][]string{}
		s, err := f.js.Stream(ctx, "APPS")
		require.NoError(t, err)
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		for range info.State.Msgs {
			m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
			require.NoError(t, err)
			switch m.Subject() {
			case bus.SubjectAppUpdated:
				var e eventsv1.AppUpdated
				require.NoError(t, proto.Unmarshal(m.Data(), &e))
				assert.Equal(t, "deploy", e.GetMeta().GetProducer())
				updated[e.GetApp()] = append(updated[e.GetApp()], e.GetOwner())
			case bus.SubjectAppDeleted:
				var e eventsv1.AppDeleted
				require.NoError(t, proto.Unmarshal(m.Data(), &e))
				deleted = append(deleted, e.GetApp())
			}
		}
		return updated, deleted
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		updated, deleted := owners()
		assert.Equal(c, []string{"web"}, updated[keep])
		assert.Equal(c, []string{gone}, deleted)
	}, 10*time.Second, 100*time.Millisecond)

	// A second deploy service on the same schema announces every app it
	// has, as it is now.
	svc, err := deploy.New(ctx, deploy.Options{EncryptionKey: f.key}, deploy.Deps{
		Pool: f.pool, JetStream: f.js, Publisher: bus.NewPublisher(f.js, nil), Logger: testkit.Logger(t),
	})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		updated, _ := owners()
		assert.Equal(c, []string{"web", "web"}, updated[keep])
		assert.Empty(c, updated[gone], "a deleted app is not announced")
	}, 10*time.Second, 100*time.Millisecond)
}
