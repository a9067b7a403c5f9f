package console

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// A stream that does not keep up holds at most watcherBuffer events and
// is marked to reload; the others still get theirs, and only of the
// teams they reach.
func TestLiveBoundedPerStream(t *testing.T) {
	l := NewLive(nil)
	slow, ok := l.watch(func(team string) bool { return team == "payments" })
	require.True(t, ok)
	web, ok := l.watch(func(team string) bool { return team == "web" })
	require.True(t, ok)

	for i := range 10 * watcherBuffer {
		l.fanOut(&typesv1.Incident{Id: fmt.Sprint(i), Team: "payments"})
	}
	l.fanOut(&typesv1.Incident{Id: "w", Team: "web"})

	require.Len(t, slow.events, watcherBuffer)
	require.True(t, slow.dropped.Load())
	require.Equal(t, "0", (<-slow.events).GetId(), "the oldest kept, the rest dropped")
	require.Len(t, web.events, 1)
	require.False(t, web.dropped.Load())
	require.Equal(t, "w", (<-web.events).GetId())

	// Stopped, the hub ends its streams and takes no more.
	l.unwatch(slow)
	l.close()
	<-l.done
	_, ok = l.watch(func(string) bool { return true })
	require.False(t, ok)
}
