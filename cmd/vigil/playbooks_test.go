package main

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

type fakeAnalysis struct {
	analysisv1.UnimplementedAnalysisServiceServer
}

func (fakeAnalysis) ListPlaybooks(context.Context, *analysisv1.ListPlaybooksRequest) (*analysisv1.ListPlaybooksResponse, error) {
	at := timestamppb.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	return &analysisv1.ListPlaybooksResponse{Playbooks: []*analysisv1.Playbook{
		{Signature: "KubePodCrashLooping/Deployment", Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Successes: 7, Failures: 1, Confidence: 0.8125, LastOutcomeTime: at},
		{Signature: "KubeMemoryPressure/StatefulSet", Action: typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, Successes: 1, LastOutcomeTime: at},
	}}, nil
}

// `vigil playbooks list` prints each record, a record below the floor of
// evidence without a confidence, and the response as it is with -o json.
func TestPlaybooksList(t *testing.T) {
	t.Setenv("VIGIL_TOKEN", "test-token")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	analysisv1.RegisterAnalysisServiceServer(srv, fakeAnalysis{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	addr := lis.Addr().String()

	out, err := runAccess(t, playbooksCommand, addr, "", "list")
	require.NoError(t, err)
	require.Regexp(t, `SIGNATURE\s+ACTION\s+SUCCEEDED\s+FAILED\s+CONFIDENCE\s+LAST OUTCOME`, out.stdout)
	require.Regexp(t, `KubePodCrashLooping/Deployment\s+rollback_deployment\s+7\s+1\s+0\.81\s+2030-01-0`, out.stdout)
	require.Regexp(t, `KubeMemoryPressure/StatefulSet\s+increase_memory_limit\s+1\s+0\s+-\s+2030-01-0`, out.stdout)

	out, err = runAccess(t, playbooksCommand, addr, "", "list", "-o", "json")
	require.NoError(t, err)
	var got struct {
		Playbooks []struct {
			Signature  string  `json:"signature"`
			Action     string  `json:"action"`
			Successes  int     `json:"successes"`
			Failures   int     `json:"failures"`
			Confidence float64 `json:"confidence"`
			Last       string  `json:"last_outcome_time"`
		} `json:"playbooks"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.Len(t, got.Playbooks, 2)
	require.Equal(t, "KubePodCrashLooping/Deployment", got.Playbooks[0].Signature)
	require.Equal(t, "REPAIR_ACTION_ROLLBACK_DEPLOYMENT", got.Playbooks[0].Action)
	require.Equal(t, 7, got.Playbooks[0].Successes)
	require.Equal(t, 1, got.Playbooks[0].Failures)
	require.InDelta(t, 0.8125, got.Playbooks[0].Confidence, 1e-9)
	require.Equal(t, "2030-01-02T03:04:05Z", got.Playbooks[0].Last)
}
