package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// A list call's page size when the request names none, and the most it
// returns whatever the request asks (AIP-158: a larger size is lowered,
// not refused).
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// pageTokenVersion is written in every page token, so that a change of
// what a token holds refuses the old ones (InvalidArgument) instead of
// reading them wrong.
const pageTokenVersion = 1

// pageToken is what a page token holds, base64url-encoded JSON: opaque
// to clients, which only pass it back.
type pageToken struct {
	V int             `json:"v"`
	L string          `json:"l"`
	K json.RawMessage `json:"k"`
}

// PageSize is a request's page size n: DefaultPageSize for 0, at most
// MaxPageSize. A negative one is added to b as a violation of field
// ("page_size"), and DefaultPageSize returned.
func PageSize(b *BadRequestError, field string, n int32) int {
	switch {
	case n < 0:
		b.Add(field, "must not be negative")
		return DefaultPageSize
	case n == 0:
		return DefaultPageSize
	}
	return int(min(n, MaxPageSize))
}

// PageToken returns the token of the page that starts after the item
// whose sort key is after, in list: a name of the list ("incidents") that
// keeps one list's tokens from being taken by another. K is a struct of
// JSON fields that decoding checks (time.Time, uuid.UUID, int64...).
func PageToken[K any](list string, after K) string {
	k, err := json.Marshal(after)
	if err != nil {
		// K is a struct of the list's own key fields: a type that
		// cannot be encoded is a bug of its list, not a request's.
		panic(fmt.Sprintf("server: page token of %s: %v", list, err))
	}
	b, _ := json.Marshal(pageToken{V: pageTokenVersion, L: list, K: k})
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParsePageToken returns the sort key a token of list holds, nil for ""
// (the first page). A token that PageToken did not make for list (of
// another list or version, edited, garbage) is added to b as a violation
// of page_token, and nil returned.
func ParsePageToken[K any](b *BadRequestError, list, token string) *K {
	if token == "" {
		return nil
	}
	var (
		t   pageToken
		key K
	)
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = strictJSON(raw, &t)
	}
	if err == nil && (t.V != pageTokenVersion || t.L != list || len(t.K) == 0 || string(t.K) == "null") {
		err = fmt.Errorf("version %d of %q", t.V, t.L)
	}
	if err == nil {
		err = strictJSON(t.K, &key)
	}
	if err != nil {
		b.Add("page_token", "is not a token this API returned")
		return nil
	}
	return &key
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// NextPage cuts items, read with one more than size to learn whether
// more follow, to size, and returns them with the token of the next page
// ("" on the last), which starts after the key of the last item kept.
func NextPage[T, K any](list string, items []T, size int, key func(T) K) ([]T, string) {
	if size < 1 || len(items) <= size {
		return items, ""
	}
	items = items[:size]
	return items, PageToken(list, key(items[size-1]))
}

// TimeID is the sort key of a list ordered by a time, then by id (a
// UUID), as most of Vigil's lists are.
type TimeID struct {
	Time time.Time `json:"t"`
	ID   uuid.UUID `json:"id"`
}

// TimeIDOf is the key of an item listed by t and id, a UUID the database
// gave it (one that is not reads as the zero UUID).
func TimeIDOf(t time.Time, id string) TimeID {
	u, _ := uuid.Parse(id)
	return TimeID{Time: t, ID: u}
}

// Parts are the key's time and id as a query takes them: zero ones for
// nil, the first page.
func (k *TimeID) Parts() (time.Time, string) {
	if k == nil {
		return time.Time{}, ""
	}
	return k.Time, k.ID.String()
}
