package console

import (
	"cmp"
	"maps"
	"net/http"
	"slices"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
)

// team is one team as Vigil knows it: a name users and apps carry.
type team struct {
	Name    string
	Members []userRow
	Apps    []*deployv1.App
}

// maxAppPages bounds how many pages of apps the teams page reads (500
// apps each): past that, the page says it shows the first ones only.
const maxAppPages = 20

// adminTeamsData is the teams page's data.
type adminTeamsData struct {
	Teams []*team
	// Partial: there were more apps than the page reads.
	Partial bool
}

// adminTeams shows the teams Vigil knows, read-only: teams are not
// things of their own in Vigil but names on users (UserService) and on
// apps (their owner, AppService), so the page gathers them from both,
// through the API as the user (admins: only they may list users).
func (c *Console) adminTeams(w http.ResponseWriter, r *http.Request) {
	s, ctx, users, ok := c.listUsers(w, r)
	if !ok {
		return
	}
	teams := map[string]*team{}
	get := func(name string) *team {
		if teams[name] == nil {
			teams[name] = &team{Name: name}
		}
		return teams[name]
	}
	for _, u := range users {
		for _, t := range u.GetTeams() {
			get(t).Members = append(get(t).Members, userRow{User: u, RoleName: nameOf(roles, u.GetRole())})
		}
	}
	apps := deployv1.NewAppServiceClient(c.opts.Conn)
	d := adminTeamsData{}
	req := &deployv1.ListAppsRequest{PageSize: 500}
	for page := 0; ; page++ {
		if page == maxAppPages {
			d.Partial = true
			break
		}
		res, err := apps.ListApps(ctx, req)
		if err != nil {
			c.failCall(w, r, s, err)
			return
		}
		for _, a := range res.GetApps() {
			if a.GetOwner() != "" {
				get(a.GetOwner()).Apps = append(get(a.GetOwner()).Apps, a)
			}
		}
		if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	d.Teams = slices.SortedFunc(maps.Values(teams), func(a, b *team) int { return cmp.Compare(a.Name, b.Name) })
	c.render(w, r, s, "admin-teams", http.StatusOK, d)
}
