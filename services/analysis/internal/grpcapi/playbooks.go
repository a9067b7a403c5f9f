package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/playbook"
)

// ListPlaybooks implements the RPC. Playbooks are about kinds of incident,
// not any team's: every reader sees them (the policy's readGlobal).
func (s *Server) ListPlaybooks(ctx context.Context, _ *analysisv1.ListPlaybooksRequest) (*analysisv1.ListPlaybooksResponse, error) {
	ps, err := s.store.Playbooks(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	policy := playbook.DefaultPolicy()
	out := &analysisv1.ListPlaybooksResponse{}
	for _, p := range ps {
		out.Playbooks = append(out.Playbooks, &analysisv1.Playbook{
			Signature: p.Signature, Action: p.Action,
			Successes: int32(p.Record.Successes), Failures: int32(p.Record.Failures), //nolint:gosec // counts of repairs
			Confidence: policy.Confidence(p.Record), LastOutcomeTime: timestamppb.New(p.LastOutcomeAt),
		})
	}
	return out, nil
}
