// Package apitest holds the calls to Vigil's API that tests of its binary
// share: one process (`vigil up`) or split mode alike.
package apitest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

// Deployed runs a deployment of app name (of image, or its own when
// empty) to its end and returns its last state.
func Deployed(ctx context.Context, t *testing.T, apps deployv1.AppServiceClient, name, image string) *deployv1.Deployment {
	t.Helper()
	stream, err := apps.DeployApp(ctx, &deployv1.DeployAppRequest{Name: name, Image: image})
	require.NoError(t, err)
	var last *deployv1.Deployment
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return last
		}
		require.NoError(t, err)
		last = m.GetDeployment()
	}
}

// Operator makes name an operator of team whose Telegram account
// (telegramID) and Slack account (slackID, in the fake Slack's team) are
// theirs: the person who presses the approval buttons in the chats.
func Operator(ctx context.Context, t testing.TB, conn *grpc.ClientConn, name, team string, telegramID int64, slackID string) {
	t.Helper()
	users := gatewayv1.NewUserServiceClient(conn)
	_, err := users.CreateUser(ctx, &gatewayv1.CreateUserRequest{
		User: &gatewayv1.User{Name: name, Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{team}}, Password: "correct horse " + name + " battery",
	})
	require.NoError(t, err)
	_, err = users.LinkChatIdentity(ctx, &gatewayv1.LinkChatIdentityRequest{Name: name, Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM, ExternalId: fmt.Sprint(telegramID)})
	require.NoError(t, err)
	_, err = users.LinkChatIdentity(ctx, &gatewayv1.LinkChatIdentityRequest{Name: name, Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_SLACK, ExternalId: fakeslack.DefaultTeamID + ":" + slackID})
	require.NoError(t, err)
}
