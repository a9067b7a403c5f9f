package console

import (
	"context"
	"net/http"
	"strings"
	"time"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// keyRow is an API key as the keys page shows it: its prefix, never its
// secret (the API keeps only a hash).
type keyRow struct {
	*gatewayv1.Key
	Scopes []string
	Active bool
}

// adminKeysData is the keys page's data. Created and Secret are set only
// on the answer to the form that made the key: the secret is shown that
// once.
type adminKeysData struct {
	Keys []keyRow
	All  bool
	// CanCreate: the API would let the user make a key of some team
	// (every team for an admin, theirs for an operator).
	CanCreate bool
	Scopes    []namedValue[gatewayv1.Scope]
	Created   *keyRow
	Secret    string
	// Form is what was posted, kept when the key was made.
	Form keyForm
}

// keyForm is the create form's values.
type keyForm struct {
	Name, Team string
	Scopes     []string
}

// adminKeys lists the keys the user manages: every key for an admin,
// their teams' for an operator (the API scopes the list); ?all=1 adds
// revoked and expired ones.
func (c *Console) adminKeys(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	c.showKeys(withToken(r.Context(), s.access), w, r, s, adminKeysData{All: r.URL.Query().Get("all") == "1"})
}

func (c *Console) showKeys(ctx context.Context, w http.ResponseWriter, r *http.Request, s *session, d adminKeysData) {
	res, err := gatewayv1.NewKeyServiceClient(c.opts.Conn).ListKeys(ctx, &gatewayv1.ListKeysRequest{IncludeInactive: d.All})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d.Scopes = scopes
	d.CanCreate = s.canForSomeTeam("/vigil.gateway.v1.KeyService/CreateKey")
	for _, k := range res.GetKeys() {
		d.Keys = append(d.Keys, newKeyRow(k))
	}
	c.render(w, r, s, "admin-keys", http.StatusOK, d)
}

func newKeyRow(k *gatewayv1.Key) keyRow {
	row := keyRow{Key: k, Active: k.GetRevokeTime() == nil && (k.GetExpireTime() == nil || k.GetExpireTime().AsTime().After(time.Now()))}
	for _, sc := range k.GetScopes() {
		row.Scopes = append(row.Scopes, nameOf(scopes, sc))
	}
	return row
}

// adminCreateKey makes a key and answers the keys page with its secret,
// once: in this answer's body only (no-store), never in a redirect's
// URL or a cookie, so a reload or the back button cannot show it again.
func (c *Console) adminCreateKey(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	ctx := withToken(r.Context(), s.access)
	form := keyForm{Name: strings.TrimSpace(r.PostFormValue("name")), Team: strings.TrimSpace(r.PostFormValue("team")), Scopes: r.PostForm["scope"]}
	k := &gatewayv1.Key{Name: form.Name, Team: form.Team}
	for _, sc := range form.Scopes {
		k.Scopes = append(k.Scopes, valueOf(scopes, sc))
	}
	var bad server.BadRequestError
	k.ExpireTime = localTimestamp(&bad, "expires", r.PostFormValue("expires"), zone(r))
	if err := bad.Err("invalid request"); err != nil {
		c.failCall(w, r, s, err)
		return
	}
	res, err := gatewayv1.NewKeyServiceClient(c.opts.Conn).CreateKey(ctx, &gatewayv1.CreateKeyRequest{Key: k})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	created := newKeyRow(res.GetKey())
	c.showKeys(ctx, w, r, s, adminKeysData{Created: &created, Secret: res.GetSecret()})
}

// adminRevokeKey revokes a key (the form asks first).
func (c *Console) adminRevokeKey(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		_, err := gatewayv1.NewKeyServiceClient(c.opts.Conn).RevokeKey(ctx, &gatewayv1.RevokeKeyRequest{Id: r.PathValue("id")})
		return "/admin/keys", "done.admin.key_revoked", err
	})
}
