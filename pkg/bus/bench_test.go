package bus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// BenchmarkPublishBatched measures one group-commit flush as the gateway
// makes it: n alert.fired events in one EventBatch, stored (fsync always)
// and acknowledged, one flush at a time. ns/op is a flush's latency.
func BenchmarkPublishBatched(b *testing.B) {
	_, js := testkit.JetStream(b, testkit.NATS(b))
	pub := bus.NewPublisher(js, nil)
	ctx := context.Background()
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			for b.Loop() {
				msgs := make([]bus.Message, n)
				for i := range msgs {
					m, err := bus.Encode(ctx, fired(fmt.Sprint(i)))
					require.NoError(b, err)
					msgs[i] = m
				}
				require.NoError(b, pub.PublishBatched(ctx, "bench", msgs...))
			}
		})
	}
}
