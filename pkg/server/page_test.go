package server_test

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/server"
)

type incidentKey struct {
	OpenedAt time.Time `json:"t"`
	ID       uuid.UUID `json:"id"`
}

type revisionKey struct {
	Revision int64 `json:"r"`
}

func TestPageSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int32]int{0: server.DefaultPageSize, 1: 1, 500: 500, 501: server.MaxPageSize, 1 << 30: server.MaxPageSize} {
		var bad server.BadRequestError
		require.Equal(t, want, server.PageSize(&bad, "page_size", n), "%d", n)
		require.NoError(t, bad.Err("invalid request"), "%d", n)
	}
	var bad server.BadRequestError
	server.PageSize(&bad, "alerts_page_size", -1)
	require.Equal(t, []server.FieldViolation{{Field: "alerts_page_size", Description: "must not be negative"}}, bad.Violations)
}

func TestPageTokenRoundTrip(t *testing.T) {
	t.Parallel()
	key := incidentKey{OpenedAt: time.Date(2031, 1, 2, 3, 4, 5, 678901234, time.UTC), ID: uuid.New()}
	var bad server.BadRequestError
	got := server.ParsePageToken[incidentKey](&bad, "incidents", server.PageToken("incidents", key))
	require.NoError(t, bad.Err("invalid request"))
	require.Equal(t, &key, got)

	require.Nil(t, server.ParsePageToken[incidentKey](&bad, "incidents", ""), "no token: the first page")
	require.Empty(t, bad.Violations)
}

// TestPageTokenRefusals: a token PageToken did not make for the list is
// the caller's mistake, on page_token, never a key read wrong.
func TestPageTokenRefusals(t *testing.T) {
	t.Parallel()
	raw := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	id := uuid.NewString()
	for name, token := range map[string]string{
		"not base64":            "!!!",
		"not JSON":              raw("2031-01-01T00:00:00Z/" + id),
		"another list's":        server.PageToken("silences", incidentKey{ID: uuid.New()}),
		"another version":       raw(`{"v":2,"l":"incidents","k":{"t":"2031-01-01T00:00:00Z","id":"` + id + `"}}`),
		"no version":            raw(`{"l":"incidents","k":{"t":"2031-01-01T00:00:00Z","id":"` + id + `"}}`),
		"no key":                raw(`{"v":1,"l":"incidents"}`),
		"null key":              raw(`{"v":1,"l":"incidents","k":null}`),
		"a bad id":              raw(`{"v":1,"l":"incidents","k":{"t":"2031-01-01T00:00:00Z","id":"not-a-uuid"}}`),
		"a bad time":            raw(`{"v":1,"l":"incidents","k":{"t":"yesterday","id":"` + id + `"}}`),
		"a field the key lacks": raw(`{"v":1,"l":"incidents","k":{"t":"2031-01-01T00:00:00Z","id":"` + id + `","offset":10}}`),
		"another key's shape":   server.PageToken("incidents", revisionKey{Revision: 3}),
		"trailing data":         raw(`{"v":1,"l":"incidents","k":{"id":"` + id + `"}}{}`),
	} {
		var bad server.BadRequestError
		require.Nil(t, server.ParsePageToken[incidentKey](&bad, "incidents", token), name)
		require.Equal(t, []server.FieldViolation{{Field: "page_token", Description: "is not a token this API returned"}}, bad.Violations, name)
	}
}

func TestNextPage(t *testing.T) {
	t.Parallel()
	revisions := []int64{9, 8, 7, 6}
	key := func(r int64) revisionKey { return revisionKey{Revision: r} }

	page, next := server.NextPage("deployments", revisions, 3, key)
	require.Equal(t, []int64{9, 8, 7}, page)
	var bad server.BadRequestError
	require.Equal(t, &revisionKey{Revision: 7}, server.ParsePageToken[revisionKey](&bad, "deployments", next), "the next page starts after the last kept")

	page, next = server.NextPage("deployments", revisions[3:], 3, key)
	require.Equal(t, []int64{6}, page)
	require.Empty(t, next, "the last page")
	page, next = server.NextPage("deployments", revisions[1:], 3, key)
	require.Equal(t, []int64{8, 7, 6}, page)
	require.Empty(t, next, "exactly a page: the last")
}

func TestTimeID(t *testing.T) {
	t.Parallel()
	at := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	id := uuid.NewString()
	k := server.TimeIDOf(at, id)
	gotAt, gotID := k.Parts()
	require.Equal(t, at, gotAt)
	require.Equal(t, id, gotID)

	var first *server.TimeID
	gotAt, gotID = first.Parts()
	require.True(t, gotAt.IsZero(), "no token: no key")
	require.Empty(t, gotID)
}

func TestValidUUID(t *testing.T) {
	t.Parallel()
	require.NoError(t, server.ValidUUID("id", uuid.NewString()))
	for _, bad := range []string{"", "42", "not-a-uuid"} {
		err := server.ValidUUID("incident_id", bad)
		var br *server.BadRequestError
		require.ErrorAs(t, err, &br, "%q", bad)
		require.Equal(t, "invalid incident_id", br.Message)
		require.Equal(t, []server.FieldViolation{{Field: "incident_id", Description: "must be a UUID"}}, br.Violations)
	}
}
