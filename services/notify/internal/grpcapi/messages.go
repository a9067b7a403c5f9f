package grpcapi

import (
	"context"
	"net/url"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// messagesList names ListIncidentMessages' page tokens.
const messagesList = "incident-messages"

// messageKey is the sort key of an incident's messages: the order they
// were queued in.
type messageKey struct {
	Seq int64 `json:"seq"`
}

// ListIncidentMessages implements the RPC. The incident's team is the one
// notify routed it by (routed_incidents, from the incident's events:
// Vigil's own knowledge of its owner, never a label), so notify needs no
// other service to decide who may read it.
func (s *Server) ListIncidentMessages(ctx context.Context, r *notifyv1.ListIncidentMessagesRequest) (*notifyv1.ListIncidentMessagesResponse, error) {
	var bad server.BadRequestError
	if r.GetIncidentId() == "" {
		bad.Addf("incident_id", "missing")
	}
	size := server.PageSize(&bad, "page_size", r.GetPageSize())
	after := server.ParsePageToken[messageKey](&bad, messagesList, r.GetPageToken())
	if err := bad.Err("invalid request"); err != nil {
		return nil, err
	}
	inc, ok, err := s.incidents.Get(ctx, r.GetIncidentId())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "incident %s: notify never announced it", r.GetIncidentId())
	}
	if err := auth.CheckTeam(ctx, inc.Team, "incident "+inc.ID); err != nil {
		return nil, err
	}
	var from int64
	if after != nil {
		from = after.Seq
	}
	ms, err := s.deliveries.OfIncident(ctx, inc.ID, from, size+1)
	if err != nil {
		return nil, err
	}
	ms, next := server.NextPage(messagesList, ms, size, func(m postgres.Message) messageKey { return messageKey{Seq: m.Seq} })
	out := &notifyv1.ListIncidentMessagesResponse{NextPageToken: next}
	for _, m := range ms {
		out.Messages = append(out.Messages, s.incidentMessage(ctx, m))
	}
	return out, nil
}

func (s *Server) incidentMessage(ctx context.Context, m postgres.Message) *notifyv1.IncidentMessage {
	im := &notifyv1.IncidentMessage{
		Channel: m.Channel, Kind: s.reg.Kind(m.Channel), Subject: m.Subject, Status: m.Status, Error: m.Error,
		Target: shownTarget(m.Target), MessageId: m.MessageID,
		CreateTime: timestamppb.New(m.CreatedAt), UpdateTime: timestamppb.New(m.UpdatedAt),
	}
	if m.Status != "sent" || m.MessageID == "" {
		return im
	}
	// The channel as it is now: links follow its target, which is the
	// message's while the channel writes where it did.
	if ep, ok := s.reg.Channel(m.Channel); ok && ep.Target == m.Target {
		if l, ok := ep.Channel.(channel.Linker); ok {
			im.Link = l.Link(ctx, m.MessageID)
		}
	}
	return im
}

// shownTarget is a delivery's target as anyone who reads the incident may
// see it: a URL (a webhook's, deleted channels' too) only as its scheme
// and host, since its path and query often hold a token.
func shownTarget(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return target
	}
	return u.Scheme + "://" + u.Host
}
