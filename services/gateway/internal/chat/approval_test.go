package chat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
)

func TestMatchers(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{
		`alertname="High \"Latency\""`, `"app.kubernetes.io/name"="shop"`, `namespace="shop"`,
	}, chat.Matchers(map[string]string{
		"namespace": "shop", "alertname": `High "Latency"`, "app.kubernetes.io/name": "shop",
	}))
	require.Empty(t, chat.Matchers(nil))
}

type principals map[string]auth.Principal

func (p principals) ChatPrincipal(_ context.Context, _ access.ChatProvider, id string) (auth.Principal, error) {
	if pr, ok := p[id]; ok {
		return pr, nil
	}
	return auth.Principal{}, auth.ErrUnauthenticated
}

type repairs map[string]*repairv1.Repair

func (r repairs) GetRepair(_ context.Context, req *repairv1.GetRepairRequest) (*repairv1.GetRepairResponse, error) {
	return &repairv1.GetRepairResponse{Repair: r[req.GetId()]}, nil
}

func (r repairs) PostponeRepair(_ context.Context, req *repairv1.PostponeRepairRequest) (*repairv1.PostponeRepairResponse, error) {
	return &repairv1.PostponeRepairResponse{Repair: r[req.GetId()]}, nil
}

type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, ...bus.Event) error {
	return errors.New("nats: timeout")
}

// responder records what the person was told, in order.
type responder struct{ told []string }

func (r *responder) Answer(_ context.Context, text string, refused bool) error {
	if refused {
		text = "refused: " + text
	}
	r.told = append(r.told, text)
	return nil
}

func (r *responder) FollowUp(_ context.Context, text string) error {
	r.told = append(r.told, "later: "+text)
	return nil
}

// An approval that cannot be published after the answer is told as a
// follow-up, and audited as such.
func TestApprovalNotPassedOn(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 3, 4, 23, 50, 0, 0, time.UTC)
	const id = "0190a0a0-0000-7000-8000-000000000001"
	var audited []auth.AuditEntry
	a := &chat.Approvals{
		Principals: principals{"42": {Kind: auth.KindUser, Name: "alice", Role: auth.RoleOperator, Teams: []string{"payments"}}},
		Repairs: repairs{id: {
			Id: id, Team: "payments", Status: repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL,
			ExpireTime: timestamppb.New(now.Add(30 * time.Minute)),
		}},
		Publisher: failingPublisher{},
		Audit:     func(_ context.Context, e auth.AuditEntry) { audited = append(audited, e) },
		Log:       testkit.Logger(t),
		Now:       func() time.Time { return now },
	}
	r := &responder{}
	a.Handle(context.Background(), chat.Press{Provider: access.Telegram, Account: "42", Verb: approval.Approve, RepairID: id}, r)
	require.Equal(t, []string{
		"Approved: Vigil runs the repair and shows how it went on the card.",
		"later: Vigil could not pass your approval on: press Approve again.",
	}, r.told)
	require.Len(t, audited, 1)
	require.Equal(t, "user:alice", audited[0].Actor)
	require.Equal(t, "chat.telegram/ApproveRepair", audited[0].Method)
	require.Equal(t, codes.Unavailable, audited[0].Code)

	// Later, past midnight UTC: the day is named.
	r = &responder{}
	a.Handle(context.Background(), chat.Press{Provider: access.Telegram, Account: "42", Verb: approval.Later, RepairID: id}, r)
	require.Equal(t, []string{"Snoozed: Vigil asks again later, before it expires at Mar 5 00:20 UTC."}, r.told)
}
