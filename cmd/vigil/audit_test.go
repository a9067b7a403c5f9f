package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func TestAuditList(t *testing.T) {
	f, addr := startGateway(t)
	t.Setenv("VIGIL_TOKEN", "test-token")
	before := time.Now()
	out, err := runAccess(t, auditCommand, addr, "", "list", "--actor", "user:alice", "--method", "DeployApp", "--target", "app/shop",
		"--since", "2h", "--until", "2030-01-01T00:00:00Z", "--result", "failed", "--limit", "10", "--page-token", "tok")
	after := time.Now()
	require.NoError(t, err)
	got := f.last(t, "ListAuditEvents").(*gatewayv1.ListAuditEventsRequest)
	since := got.GetSince().AsTime()
	require.False(t, since.Before(before.Add(-2*time.Hour).Truncate(time.Microsecond)), "since %s", since)
	require.False(t, since.After(after.Add(-2*time.Hour)), "since %s", since)
	got.Since = nil
	requireProto(t, &gatewayv1.ListAuditEventsRequest{
		Actor: "user:alice", Method: "DeployApp", Target: "app/shop", Result: "failed",
		Until:    got.GetUntil(),
		PageSize: 10, PageToken: "tok",
	}, got)
	require.Equal(t, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), got.GetUntil().AsTime())

	require.Contains(t, out.stdout, "TIME")
	require.Regexp(t, `ACTOR\s+METHOD\s+TARGET\s+CODE\s+MESSAGE`, out.stdout)
	require.Regexp(t, `user:alice\s+vigil.deploy.v1.AppService/DeployApp\s+app/shop\s+PermissionDenied\s+not your team`, out.stdout)
	require.Contains(t, out.stdout, "\nMore: --page-token next-page\n")

	_, err = runAccess(t, auditCommand, addr, "", "list")
	require.NoError(t, err)
	requireProto(t, &gatewayv1.ListAuditEventsRequest{PageSize: 50}, f.last(t, "ListAuditEvents"))

	_, err = runAccess(t, auditCommand, addr, "", "list", "--since", "yesterday")
	require.ErrorContains(t, err, "--since")
	require.Empty(t, f.takeCalls())
}
