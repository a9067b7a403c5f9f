package grpcapi_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/grpcapi"
)

type ingested struct{ alerts []*typesv1.Alert }

func (i *ingested) Ingest(_ context.Context, as []*typesv1.Alert) error {
	i.alerts = append(i.alerts, as...)
	return nil
}

// A fingerprint sent over gRPC must be the labels' own: another would let
// a sender fire or resolve some other alert by its fingerprint. It is
// refused, naming the field and the right value, and nothing is ingested;
// an empty one is computed.
func TestIngestAlertsFingerprintIsTheLabels(t *testing.T) {
	t.Parallel()
	in := &ingested{}
	s := grpcapi.NewAlertServer(in)
	labels := map[string]string{"alertname": "ShopSlow", "namespace": "shop"}
	_, err := s.IngestAlerts(context.Background(), &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{
		{Labels: labels, StartsAt: timestamppb.Now(), Fingerprint: "deadbeefdeadbeef"},
	}})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	vs := server.Violations(status.Convert(err))
	require.Len(t, vs, 1)
	require.Equal(t, "alerts[0].fingerprint", vs[0].Field)
	require.Contains(t, vs[0].Description, alertlabel.Fingerprint(labels))
	require.Empty(t, in.alerts, "nothing ingested")

	r, err := s.IngestAlerts(context.Background(), &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{
		{Labels: labels, StartsAt: timestamppb.Now(), Fingerprint: alertlabel.Fingerprint(labels)},
		{Labels: map[string]string{"alertname": "Other"}, StartsAt: timestamppb.Now()},
	}})
	require.NoError(t, err)
	require.Len(t, in.alerts, 2)
	require.Equal(t, alertlabel.Fingerprint(labels), r.GetFingerprints()[0])
}
