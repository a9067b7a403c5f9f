package console

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// The hub subscribes to what the gateway's NATS user may watch, and
// watches all of it: the server would refuse a subject missing from
// bus.Roles without the subscription failing, and the page would just
// never change.
func TestLiveSubjectsWatched(t *testing.T) {
	for _, r := range bus.Roles {
		if r.User == "gateway" {
			require.ElementsMatch(t, r.Watches, LiveSubjects)
			return
		}
	}
	t.Fatal("no gateway role in bus.Roles")
}

// A stream that does not keep up holds at most watcherBuffer events and
// is marked to reload; the others still get theirs, and only of the
// teams they reach.
func TestLiveBoundedPerStream(t *testing.T) {
	l := NewLive(nil)
	slow, ok := l.watch(func(team string) bool { return team == "payments" }, "")
	require.True(t, ok)
	web, ok := l.watch(func(team string) bool { return team == "web" }, "")
	require.True(t, ok)

	for i := range 10 * watcherBuffer {
		l.fanOut(change{id: fmt.Sprint(i), in: &typesv1.Incident{Id: fmt.Sprint(i), Team: "payments"}})
	}
	l.fanOut(change{id: "w", in: &typesv1.Incident{Id: "w", Team: "web"}})

	require.Len(t, slow.events, watcherBuffer)
	require.True(t, slow.dropped.Load())
	require.Equal(t, "0", (<-slow.events).id, "the oldest kept, the rest dropped")
	require.Len(t, web.events, 1)
	require.False(t, web.dropped.Load())
	require.Equal(t, "w", (<-web.events).id)

	// Stopped, the hub ends its streams and takes no more.
	l.unwatch(slow)
	l.close()
	<-l.done
	_, ok = l.watch(func(string) bool { return true }, "")
	require.False(t, ok)
}

// An incident page's stream gets every change of its incident, analyses'
// and repairs' included, and nothing of another; the list's streams get
// no analysis or repair event, which names no team to check.
func TestLiveIncidentPage(t *testing.T) {
	l := NewLive(nil)
	payments := func(team string) bool { return team == "payments" }
	page, ok := l.watch(payments, "i1")
	require.True(t, ok)
	list, ok := l.watch(payments, "")
	require.True(t, ok)

	l.fanOut(change{id: "i2"})
	l.fanOut(change{id: "i2", in: &typesv1.Incident{Id: "i2", Team: "payments"}})
	l.fanOut(change{id: "i1"})
	l.fanOut(change{id: "i1", in: &typesv1.Incident{Id: "i1", Team: "payments"}})

	require.Len(t, page.events, 2)
	require.Equal(t, change{id: "i1"}, <-page.events, "the repair event of its incident")
	require.Equal(t, "i1", (<-page.events).in.GetId())
	require.Len(t, list.events, 2, "only incident events")
	require.Equal(t, "i2", (<-list.events).in.GetId())
	require.Equal(t, "i1", (<-list.events).in.GetId())
}
