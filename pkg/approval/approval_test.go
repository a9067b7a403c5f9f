package approval_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
)

const id = "01a23898-f34e-77f2-88f0-5551a310d725"

func TestCallbackDataRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range append([]approval.Verb{approval.Acknowledge}, approval.Verbs...) {
		require.Equal(t, v == approval.Acknowledge, v.OnIncident(), v)
		d := approval.CallbackData(v, id)
		require.LessOrEqual(t, len(d), 64, "Telegram's limit")
		got, gotID, err := approval.ParseCallbackData(d)
		require.NoError(t, err)
		require.Equal(t, v, got)
		require.Equal(t, id, gotID)

		got, gotID, err = approval.ParseSlackAction(approval.SlackActionID(v), id)
		require.NoError(t, err)
		require.Equal(t, v, got)
		require.Equal(t, id, gotID)
	}
	for _, bad := range []string{"", "v1:", "v1:a:", "v1:x:" + id, "v2:a:" + id, `{"a":"` + id + `"}`, "v1:a:" + id + "x"} {
		_, _, err := approval.ParseCallbackData(bad)
		require.ErrorIs(t, err, approval.ErrInvalid, bad)
	}
	_, _, err := approval.ParseSlackAction("vigil_repair_delete", id)
	require.ErrorIs(t, err, approval.ErrInvalid)
	_, _, err = approval.ParseSlackAction("vigil_repair_approve", "not-an-id")
	require.ErrorIs(t, err, approval.ErrInvalid)
}

func FuzzParseCallbackData(f *testing.F) {
	f.Add(approval.CallbackData(approval.Approve, id))
	f.Add("v1:s:" + id)
	f.Add("v1::")
	f.Fuzz(func(t *testing.T, s string) {
		v, got, err := approval.ParseCallbackData(s)
		if err != nil {
			return
		}
		require.Equal(t, s, approval.CallbackData(v, got), "only what CallbackData makes parses")
	})
}
