package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

// The methods whose policy decides the apps' buttons.
const (
	createAppMethod   = "/vigil.deploy.v1.AppService/CreateApp"
	deployAppMethod   = "/vigil.deploy.v1.AppService/DeployApp"
	rollbackAppMethod = "/vigil.deploy.v1.AppService/RollbackApp"
	deleteAppMethod   = "/vigil.deploy.v1.AppService/DeleteApp"
)

// deploymentWatchFor bounds one live stream of a deployment: a rollout waits at
// most its timeout, and a browser still listening after this reconnects.
const deploymentWatchFor = 15 * time.Minute

// The choices CreateApp accepts (deployv1.App's framework and plan).
var (
	appFrameworks = []string{"go", "nodejs", "nextjs", "flask", "django", "static"}
	appPlans      = []string{"basic", "standard", "advanced", "professional"}
)

// routeApps routes the apps' pages: the list, the onboarding wizard, one
// app (its spec, history, deploy, rollback, render, delete) and its
// deployments, live.
func (c *Console) routeApps() {
	c.mux.HandleFunc("GET /apps", c.appList)
	c.mux.HandleFunc("GET /apps/new", c.appWizard)
	c.mux.HandleFunc("POST /apps/new", c.appCreate)
	c.mux.HandleFunc("GET /apps/{name}", c.appPage)
	c.mux.HandleFunc("GET /apps/{name}/render", c.appRender)
	c.mux.HandleFunc("POST /apps/{name}/deploy", c.appDeploy)
	c.mux.HandleFunc("POST /apps/{name}/rollback", c.appRollback)
	c.mux.HandleFunc("POST /apps/{name}/delete", c.appDelete)
	c.mux.HandleFunc("GET /apps/{name}/deployments/{id}", c.deploymentPage)
	c.mux.HandleFunc("GET /apps/{name}/deployments/{id}/events", c.deploymentEvents)
}

// appsAPI is the API's AppService, called as whoever the context's
// token names.
func (c *Console) appsAPI() deployv1.AppServiceClient {
	return deployv1.NewAppServiceClient(c.opts.Conn)
}

// deploymentView is a deployment as the pages show it.
type deploymentView struct {
	*deployv1.Deployment
	StatusKey, StatusClass string
	// Ended: succeeded or failed; nothing more will change.
	Ended bool
}

func newDeploymentView(d *deployv1.Deployment) *deploymentView {
	if d == nil {
		return nil
	}
	st := strings.ToLower(strings.TrimPrefix(d.GetStatus().String(), "DEPLOYMENT_STATUS_"))
	return &deploymentView{
		Deployment: d, StatusKey: "apps.st." + st, StatusClass: st,
		Ended: d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED || d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED,
	}
}

// StepClass and StepKey are a step's status as a class and a word.
func (d *deploymentView) StepClass(st *deployv1.Step) string {
	return strings.ToLower(strings.TrimPrefix(st.GetStatus().String(), "STEP_STATUS_"))
}

func (d *deploymentView) StepKey(st *deployv1.Step) string { return "apps.step_st." + d.StepClass(st) }

// Rollback reports whether the deployment is a rollback.
func (d *deploymentView) Rollback() bool {
	return d.GetKind() == deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK
}

// appRow is one app of the list, with its last deployment.
type appRow struct {
	*deployv1.App
	Last *deploymentView
}

type appListData struct {
	Rows []appRow
	pager
	// MayCreate: the user may onboard an app for one of their teams.
	MayCreate bool
}

// appList is one page of the apps the user may see (the API scopes them
// to the user's teams), each with the status of its last deployment.
func (c *Console) appList(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	ctx := withToken(r.Context(), s.access)
	api := c.appsAPI()
	page := r.URL.Query().Get("page")
	res, err := api.ListApps(ctx, &deployv1.ListAppsRequest{PageSize: pageSize, PageToken: page})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := appListData{pager: newPager("/apps", nil, page, res.GetNextPageToken()), MayCreate: s.canForSomeTeam(createAppMethod)}
	d.Rows = make([]appRow, len(res.GetApps()))
	// The app carries its current revision, not how its last deployment
	// went: one ListDeployments per app, a few at a time.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, a := range res.GetApps() {
		d.Rows[i].App = a
		g.Go(func() error {
			h, err := api.ListDeployments(gctx, &deployv1.ListDeploymentsRequest{App: a.GetName(), PageSize: 1})
			if err != nil {
				return err
			}
			if len(h.GetDeployments()) > 0 {
				d.Rows[i].Last = newDeploymentView(h.GetDeployments()[0])
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.render(w, r, s, "apps", http.StatusOK, d)
}

// onboardsAnyTeam reports whether the user may name any team (an admin).
func (s *session) onboardsAnyTeam() bool { return s.who.GetAllTeams() && s.can(createAppMethod, "") }

// onboardTeams are the user's teams they may onboard an app for.
func (s *session) onboardTeams() []string {
	var teams []string
	for _, t := range s.who.GetTeams() {
		if s.can(createAppMethod, t) {
			teams = append(teams, t)
		}
	}
	return teams
}

// appForm is the wizard's form as typed, kept when the API refuses it.
type appForm struct {
	Name, DisplayName, Owner, Cluster, Framework, Plan, Image string
	Port, Replicas, MemoryMiB, Domain, Env                    string
	AutoRepair                                                bool
}

type wizardData struct {
	Form appForm
	// Errors are the API's field errors by the form's field names.
	Errors map[string]string
	// Problem is a refusal about no one field.
	Problem           string
	Teams             []string
	AnyTeam           bool
	Clusters          []string
	Frameworks, Plans []string
	// StepErrors are the steps with an error.
	StepErrors map[int]bool
}

// wizardSteps are the form's steps by field (for marking the step an
// error belongs to).
var wizardSteps = map[string]int{
	"name": 1, "display_name": 1, "owner": 1,
	"cluster": 2, "domain": 2,
	"image": 3, "framework": 3, "port": 3, "env": 3,
	"plan": 4, "replicas": 4, "memory_mib": 4, "auto_repair": 4,
}

func (c *Console) appWizardData(r *http.Request, s *session, f appForm) wizardData {
	d := wizardData{Form: f, Errors: map[string]string{}, StepErrors: map[int]bool{}, Teams: s.onboardTeams(), AnyTeam: s.onboardsAnyTeam(), Frameworks: appFrameworks, Plans: appPlans}
	// Clusters are a choice only when the API lists them to this user;
	// else the field is free text (empty: the default cluster).
	if res, err := deployv1.NewClusterServiceClient(c.opts.Conn).ListClusters(withToken(r.Context(), s.access), &deployv1.ListClustersRequest{}); err == nil {
		for _, cl := range res.GetClusters() {
			d.Clusters = append(d.Clusters, cl.GetName())
		}
	}
	return d
}

// appWizard is the onboarding form: what CreateApp takes, in steps.
func (c *Console) appWizard(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	d := c.appWizardData(r, s, appForm{Framework: "go", Plan: "basic"})
	if len(d.Teams) == 0 && !d.AnyTeam {
		c.fail(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	if len(d.Teams) > 0 {
		d.Form.Owner = d.Teams[0]
	}
	c.render(w, r, s, "app_new", http.StatusOK, d)
}

// appCreate registers the wizard's app (CreateApp, as the user) and goes
// on to its preview. A refusal shows the form again as typed, each field
// error at its field and step.
func (c *Console) appCreate(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	f := appForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
		Owner: strings.TrimSpace(r.PostFormValue("owner")), Cluster: strings.TrimSpace(r.PostFormValue("cluster")),
		Framework: r.PostFormValue("framework"), Plan: r.PostFormValue("plan"), Image: strings.TrimSpace(r.PostFormValue("image")),
		Port: strings.TrimSpace(r.PostFormValue("port")), Replicas: strings.TrimSpace(r.PostFormValue("replicas")),
		MemoryMiB: strings.TrimSpace(r.PostFormValue("memory_mib")), Domain: strings.TrimSpace(r.PostFormValue("domain")),
		Env: r.PostFormValue("env"), AutoRepair: r.PostFormValue("auto_repair") == "on",
	}
	errs, problem := map[string]string{}, ""
	app, bad := f.app(errs)
	code := http.StatusBadRequest
	if !bad {
		_, err := c.appsAPI().CreateApp(withToken(r.Context(), s.access), &deployv1.CreateAppRequest{App: app})
		if err == nil {
			http.Redirect(w, r, withDone("/apps/"+url.PathEscape(app.GetName())+"/render?onboard=1", "done.apps.created"), http.StatusSeeOther)
			return
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.InvalidArgument:
			if !appFieldErrors(st, errs) {
				problem = explain(st)
			}
		case codes.AlreadyExists:
			code, errs["name"] = http.StatusConflict, translate(language(r), "apps.taken")
		case codes.FailedPrecondition:
			code, problem = http.StatusConflict, explain(st)
		default:
			c.failCall(w, r, s, err)
			return
		}
		c.opts.Log.InfoContext(r.Context(), "console: app refused", "app", app.GetName(), "error", err)
	}
	d := c.appWizardData(r, s, f)
	d.Errors, d.Problem = errs, problem
	for field := range errs {
		d.StepErrors[wizardSteps[field]] = true
	}
	c.render(w, r, s, "app_new", code, d)
}

// app is the form as CreateApp's app; what cannot be one (a port that is
// not a number) goes to errs, and bad reports it.
func (f appForm) app(errs map[string]string) (app *deployv1.App, bad bool) {
	app = &deployv1.App{
		Name: f.Name, DisplayName: f.DisplayName, Owner: f.Owner, Cluster: f.Cluster, Framework: f.Framework,
		Plan: f.Plan, Image: f.Image, Domain: f.Domain, AutoRepair: f.AutoRepair,
	}
	number := func(field, v string) int64 {
		if v == "" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			errs[field] = "a whole number, 0 or more"
		}
		return n
	}
	app.Port = int32(number("port", f.Port))
	app.Replicas = int32(number("replicas", f.Replicas))
	app.MemoryLimitBytes = number("memory_mib", f.MemoryMiB) << 20
	for line := range strings.SplitSeq(f.Env, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			errs["env"] = fmt.Sprintf("%q: one KEY=VALUE a line", line)
			continue
		}
		if app.Env == nil {
			app.Env = map[string]string{}
		}
		app.Env[k] = v
	}
	return app, len(errs) > 0
}

// appFieldErrors puts the API's field errors of a refused CreateApp under
// the form's field names ("app.env[X]" is the env field's), and reports
// whether each error found its field.
func appFieldErrors(st *status.Status, errs map[string]string) bool {
	all := true
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, v := range br.GetFieldViolations() {
			field := strings.TrimPrefix(v.GetField(), "app.")
			field, _, _ = strings.Cut(field, "[")
			if field == "memory_limit_bytes" {
				field = "memory_mib"
			}
			if _, ok := wizardSteps[field]; !ok {
				all = false
				continue
			}
			if errs[field] != "" {
				errs[field] += "; "
			}
			errs[field] += v.GetDescription()
		}
	}
	return all && len(errs) > 0
}

type appData struct {
	App     *deployv1.App
	History []*deploymentView
	// Running is a deployment under way, if any.
	Running *deploymentView
	pager
}

// appPage shows one app: its spec, its deployments (paged, newest
// first) and what the user may do with it.
func (c *Console) appPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	ctx := withToken(r.Context(), s.access)
	name := r.PathValue("name")
	res, err := c.appsAPI().GetApp(ctx, &deployv1.GetAppRequest{Name: name})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	page := r.URL.Query().Get("page")
	h, err := c.appsAPI().ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: name, PageSize: pageSize, PageToken: page})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	base := "/apps/" + url.PathEscape(name)
	d := appData{App: res.GetApp(), pager: newPager(base, nil, page, h.GetNextPageToken())}
	for _, dep := range h.GetDeployments() {
		x := newDeploymentView(dep)
		d.History = append(d.History, x)
		if !x.Ended && d.Running == nil {
			d.Running = x
		}
	}
	c.render(w, r, s, "app", http.StatusOK, d)
}

// appRender shows the manifests Vigil would apply for the app (secret
// values left out), as text; in the wizard (?onboard=1), its preview
// step before the first deployment.
func (c *Console) appRender(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	ctx := withToken(r.Context(), s.access)
	name := r.PathValue("name")
	a, err := c.appsAPI().GetApp(ctx, &deployv1.GetAppRequest{Name: name})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	res, err := c.appsAPI().RenderApp(ctx, &deployv1.RenderAppRequest{Name: name})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.render(w, r, s, "app_render", http.StatusOK, appRenderData{App: a.GetApp(), YAML: res.GetYaml(), Onboard: r.URL.Query().Get("onboard") == "1"})
}

type appRenderData struct {
	App     *deployv1.App
	YAML    string
	Onboard bool
}

// appDeploy deploys the app (the image typed, else its own) and goes to
// the deployment's page, which follows it live. The deployment runs to
// its end without the console listening.
func (c *Console) appDeploy(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		return deployStarted(ctx, name, func(ctx context.Context) (deployRecv, error) {
			s, err := c.appsAPI().DeployApp(ctx, &deployv1.DeployAppRequest{Name: name, Image: strings.TrimSpace(r.PostFormValue("image"))})
			return deployStream(s, err)
		})
	})
}

// appRollback returns the app to a revision of its history (the one
// before the current when none is named), as a revision of its own.
func (c *Console) appRollback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		to, err := strconv.ParseInt(r.PostFormValue("to_revision"), 10, 64)
		if err != nil && r.PostFormValue("to_revision") != "" {
			return "", "", status.Error(codes.InvalidArgument, "to_revision: not a revision number")
		}
		return deployStarted(ctx, name, func(ctx context.Context) (deployRecv, error) {
			s, err := c.appsAPI().RollbackApp(ctx, &deployv1.RollbackAppRequest{Name: name, ToRevision: to})
			return deployStream(s, err)
		})
	})
}

// deployRecv reads a deployment stream's next update.
type deployRecv func() (*deployv1.Deployment, error)

// deployStream reads the deployments of a DeployApp or RollbackApp stream.
func deployStream[M any, P interface {
	*M
	GetDeployment() *deployv1.Deployment
}](s grpc.ServerStreamingClient[M], err error) (deployRecv, error) {
	if err != nil {
		return nil, err
	}
	return func() (*deployv1.Deployment, error) {
		m, err := s.Recv()
		if err != nil {
			return nil, err
		}
		return P(m).GetDeployment(), nil
	}, nil
}

// deployStarted starts a deployment and answers its page, once the API has
// recorded it (its first update); the console stops listening there.
func deployStarted(ctx context.Context, name string, start func(context.Context) (deployRecv, error)) (to, done string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next, err := start(ctx)
	if err != nil {
		return "", "", err
	}
	d, err := next()
	if err != nil {
		return "", "", err
	}
	return "/apps/" + url.PathEscape(name) + "/deployments/" + url.PathEscape(d.GetId()), "done.apps.started", nil
}

// appDelete forgets the app; with delete_resources, also what Vigil made
// for it in the cluster.
func (c *Console) appDelete(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		_, err := c.appsAPI().DeleteApp(ctx, &deployv1.DeleteAppRequest{Name: r.PathValue("name"), DeleteResources: r.PostFormValue("delete_resources") == "on"})
		return "/apps", "done.apps.deleted", err
	})
}

type deploymentData struct {
	App string
	D   *deploymentView
	// Events is the live stream's path while the deployment runs.
	Events string
}

// deploymentPage shows one deployment and its steps: their state when
// the page was asked for (a reload shows the latest), and, with the
// page's script, live from the deployment's events.
func (c *Console) deploymentPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	name, id := r.PathValue("name"), r.PathValue("id")
	res, err := c.appsAPI().GetDeployment(withToken(r.Context(), s.access), &deployv1.GetDeploymentRequest{Id: id})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	if res.GetDeployment().GetApp() != name {
		c.fail(w, r, s, http.StatusNotFound, "error.notfound")
		return
	}
	d := deploymentData{App: name, D: newDeploymentView(res.GetDeployment())}
	if !d.D.Ended {
		d.Events = r.URL.Path + "/events"
	}
	c.render(w, r, s, "deployment", http.StatusOK, d)
}

// deploymentEvents relays WatchDeployment, called with the user's token,
// as server-sent events: "deployment" with the deployment's steps as
// HTML after each change, "end" once it has ended, "reload" when the
// stream broke or ran for deploymentWatchFor (the page then shows its state anew).
func (c *Console) deploymentEvents(w http.ResponseWriter, r *http.Request) {
	s, err := c.authenticate(w, r)
	if err != nil && !errors.Is(err, errNoSession) {
		c.failCall(w, r, nil, err)
		return
	}
	if s == nil {
		// Signed out: the page reloads, and its load goes to the login.
		streamHeaders(w)
		_, _ = fmt.Fprint(w, "event: reload\ndata:\n\n")
		return
	}
	ctx, cancel := context.WithTimeout(withToken(r.Context(), s.access), deploymentWatchFor)
	defer cancel()
	// The API checked the token when the watch began; a session revoked
	// or expired since ends the stream within recheckEvery, as /events.
	go func() {
		tick := time.NewTicker(recheckEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := c.auth.WhoAmI(ctx, &gatewayv1.WhoAmIRequest{}); err != nil {
					cancel()
					return
				}
			}
		}
	}()
	stream, err := c.appsAPI().WatchDeployment(ctx, &deployv1.WatchDeploymentRequest{Id: r.PathValue("id")})
	var first *deployv1.WatchDeploymentResponse
	if err == nil {
		first, err = stream.Recv()
	}
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	if first.GetDeployment().GetApp() != r.PathValue("name") {
		c.fail(w, r, s, http.StatusNotFound, "error.notfound")
		return
	}
	t, err := c.pages["deployment"].Clone()
	if err != nil {
		c.opts.Log.ErrorContext(r.Context(), "console: deployment steps not rendered", "error", err)
		return
	}
	t.Funcs(pageFuncs(r, s))
	rc := http.NewResponseController(w)
	streamHeaders(w)
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 3000\n\n")
	var buf bytes.Buffer
	for m := first; ; {
		buf.Reset()
		d := newDeploymentView(m.GetDeployment())
		writeDeployment(&buf, t, d)
		if _, err := w.Write(buf.Bytes()); err != nil || rc.Flush() != nil || d.Ended {
			return
		}
		m, err = stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && r.Context().Err() == nil {
				c.opts.Log.InfoContext(r.Context(), "console: deployment stream ended", "error", err)
			}
			_, _ = fmt.Fprint(w, "event: reload\ndata:\n\n")
			_ = rc.Flush()
			return
		}
	}
}

// writeDeployment puts d's event into buf: its steps as HTML, and "end"
// after the last.
func writeDeployment(buf *bytes.Buffer, t *template.Template, d *deploymentView) {
	var html bytes.Buffer
	if err := t.ExecuteTemplate(&html, "progress", d); err != nil {
		buf.WriteString("event: reload\ndata:\n\n")
		return
	}
	sseData(buf, "deployment", html.String())
	if d.Ended {
		sseData(buf, "end", d.GetStatus().String())
	}
}
