package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
	"github.com/vigil-ops/vigil/services/deploy"
)

// appsConsole is a Vigil on a real control plane (testkit.SharedKube) for
// the apps' pages, with users of payments (olga operates, vic views) and
// of web (wes operates).
type appsConsole struct {
	*consoleVigil
	apps deployv1.AppServiceClient
}

func startAppsConsole(t *testing.T) *appsConsole {
	t.Helper()
	kubeconfig, err := os.ReadFile(testkit.SharedKube(t).Kubeconfig)
	require.NoError(t, err)
	c := startConsole(t, []*gatewayv1.User{
		{Name: "olga", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}},
		{Name: "vic", Role: gatewayv1.Role_ROLE_VIEWER, Teams: []string{"payments"}},
		{Name: "wes", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"web"}},
	}, func(o *app.Options) { o.Deploy.DevCluster = &deploy.Cluster{Name: "dev", Kubeconfig: kubeconfig} })
	return &appsConsole{consoleVigil: c, apps: deployv1.NewAppServiceClient(c.conn)}
}

// history is the app's deployments as the API lists them.
func (a *appsConsole) history(t *testing.T, name string) []*deployv1.Deployment {
	t.Helper()
	res, err := a.apps.ListDeployments(a.admin, &deployv1.ListDeploymentsRequest{App: name})
	require.NoError(t, err)
	return res.GetDeployments()
}

// ended waits for deployment id to end and returns it.
func (a *appsConsole) ended(t *testing.T, id string) *deployv1.Deployment {
	t.Helper()
	var d *deployv1.Deployment
	require.Eventually(t, func() bool {
		res, err := a.apps.GetDeployment(a.admin, &deployv1.GetDeploymentRequest{Id: id})
		require.NoError(t, err)
		d = res.GetDeployment()
		return d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED || d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED
	}, 2*time.Minute, 100*time.Millisecond, "deployment %s did not end", id)
	return d
}

var deploymentPath = regexp.MustCompile(`^/apps/([a-z0-9-]+)/deployments/([0-9a-f-]{36})\?`)

// started is the deployment a deploy or rollback's answer went to.
func started(t *testing.T, p browser.Page, app string) string {
	t.Helper()
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	m := deploymentPath.FindStringSubmatch(p.Header.Get("Location"))
	require.NotNil(t, m, p.Header.Get("Location"))
	require.Equal(t, app, m[1])
	return m[2]
}

// TestConsoleAppsOverHTTP drives the apps' pages as a browser without
// script would, on a real control plane: an operator onboards an app (a
// bad field first: refused at its field, what was typed kept, nothing
// created), previews and deploys it and follows its steps as server-sent
// events, deploys a new version, sees the history and rolls back; a
// viewer's direct posts and another team's operator are refused and
// change nothing; the operator deletes the app.
func TestConsoleAppsOverHTTP(t *testing.T) {
	a := startAppsConsole(t)
	olga := a.login(t, "olga")
	p := olga.Get("/apps")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "No apps.")
	require.Contains(t, p.Body, `href="/apps/new"`)

	// The wizard offers olga's own teams only.
	p = olga.Get("/apps/new")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, `<option selected>payments</option>`)
	require.NotContains(t, p.Body, "web")
	require.Contains(t, p.Body, `<option>dev</option>`, "the registered clusters are a choice")

	// A bad name and a bad image: 400, each error at its field and step
	// (1 and 3), the rest as typed, nothing created.
	form := url.Values{
		"name": {"Shop_1"}, "display_name": {"The shop"}, "owner": {"payments"}, "framework": {"go"}, "plan": {"basic"},
		"image": {"Not An Image"}, "env": {"LOG_LEVEL=debug"}, "replicas": {"1"},
	}
	p = olga.Post("/apps/new", form)
	require.Equal(t, http.StatusBadRequest, p.Code, p.Body)
	require.Contains(t, p.Body, `<fieldset class="step has-error" id="step-1">`)
	require.Contains(t, p.Body, `<fieldset class="step" id="step-2">`)
	require.Contains(t, p.Body, `<fieldset class="step has-error" id="step-3">`)
	require.Regexp(t, `(?s)id="step-1">.*<p class="field-error" data-field="name">[^<]+</p>.*id="step-2"`, p.Body)
	require.Regexp(t, `(?s)id="step-3">.*<p class="field-error" data-field="image">[^<]+</p>.*id="step-4"`, p.Body)
	require.NotContains(t, p.Body, `data-field="framework"`)
	require.Contains(t, p.Body, `value="Shop_1"`)
	require.Contains(t, p.Body, `value="The shop"`)
	require.Contains(t, p.Body, `value="Not An Image"`)
	require.Contains(t, p.Body, ">LOG_LEVEL=debug</textarea>")
	require.Contains(t, p.Body, `name="replicas" type="number" min="0" value="1"`)
	list, err := a.apps.ListApps(a.admin, &deployv1.ListAppsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetApps())

	// Another team's name for the owner: refused by the API, nothing
	// created.
	form.Set("name", "shop")
	form.Set("image", "registry.example.com/shop:1")
	form.Set("owner", "web")
	p = olga.Post("/apps/new", form)
	require.Equal(t, http.StatusForbidden, p.Code, p.Body)
	list, err = a.apps.ListApps(a.admin, &deployv1.ListAppsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetApps())

	// Created: on to the preview, the manifests as text.
	form.Set("owner", "payments")
	p = olga.Post("/apps/new", form)
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, "/apps/shop/render?done=done.apps.created&onboard=1", p.Header.Get("Location"))
	p = olga.Get(p.Header.Get("Location"))
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "kind: Deployment")
	require.Contains(t, p.Body, "image: registry.example.com/shop:1")
	require.Contains(t, p.Body, `action="/apps/shop/deploy"`)

	// A secret's value is never shown, its name is.
	_, err = a.apps.UpdateApp(a.admin, &deployv1.UpdateAppRequest{
		App: &deployv1.App{Name: "shop"}, UpdateMask: &fieldmaskpb.FieldMask{}, SetSecrets: map[string]string{"API_KEY": "s3cret-value-42"},
	})
	require.NoError(t, err)
	for _, path := range []string{"/apps/shop", "/apps/shop/render"} {
		p = olga.Get(path)
		require.Equal(t, http.StatusOK, p.Code)
		require.Contains(t, p.Body, "API_KEY")
		require.NotContains(t, p.Body, "s3cret-value-42")
	}

	// Deployed; its steps come as events until it ends.
	id := started(t, olga.Post("/apps/shop/deploy", nil), "shop")
	stream := olga.Events("/apps/shop/deployments/" + id + "/events")
	var steps []string
	for ev := range stream.C {
		if ev.Name == "deployment" {
			steps = append(steps, ev.Data)
		}
		if ev.Name == "end" {
			require.Equal(t, "DEPLOYMENT_STATUS_SUCCEEDED", ev.Data, steps)
			break
		}
	}
	require.NotEmpty(t, steps)
	last := steps[len(steps)-1]
	require.Contains(t, last, `data-step="wait_rollout"`)
	require.Contains(t, last, `class="badge dep-succeeded"`)
	require.Equal(t, http.StatusNotFound, olga.Get("/apps/other/deployments/"+id).Code, "a deployment is its app's")
	p = olga.Get("/apps/shop/deployments/" + id)
	require.Equal(t, http.StatusOK, p.Code)
	require.NotContains(t, p.Body, "data-events", "an ended deployment is not followed")
	require.Contains(t, p.Body, `<li class="step-done" data-step="wait_rollout">`)

	// A new version.
	p = olga.Post("/apps/shop/deploy", url.Values{"image": {"registry.example.com/shop:2"}})
	second := a.ended(t, started(t, p, "shop"))
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, second.GetStatus(), second.GetReason())

	// The list and the app's page: revision 2, both in the history, a
	// rollback to 1.
	p = olga.Get("/apps")
	require.Contains(t, p.Body, `<tr id="app-shop">`)
	require.Contains(t, p.Body, `class="badge dep-succeeded"`)
	p = olga.Get("/apps/shop")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, `<tr id="revision-2">`)
	require.Contains(t, p.Body, `<tr id="revision-1">`)
	require.Contains(t, p.Body, `name="to_revision" value="1"`)
	require.NotContains(t, p.Body, `name="to_revision" value="2"`, "no rollback to the running revision")

	// vic views payments: the page without its buttons, and his direct
	// posts refused, changing nothing.
	vic := a.login(t, "vic")
	p = vic.Get("/apps/shop")
	require.Equal(t, http.StatusOK, p.Code)
	require.NotContains(t, p.Body, `action="/apps/shop/deploy"`)
	require.NotContains(t, p.Body, `action="/apps/shop/rollback"`)
	require.NotContains(t, p.Body, `action="/apps/shop/delete"`)
	require.NotContains(t, vic.Get("/apps").Body, `href="/apps/new"`)
	for path, form := range map[string]url.Values{
		"/apps/shop/deploy":   {"image": {"registry.example.com/shop:3"}},
		"/apps/shop/rollback": {"to_revision": {"1"}},
		"/apps/shop/delete":   {"delete_resources": {"on"}},
		"/apps/new":           {"name": {"vics"}, "owner": {"payments"}, "framework": {"go"}, "plan": {"basic"}, "image": {"registry.example.com/vics:1"}},
	} {
		require.Equal(t, http.StatusForbidden, vic.Post(path, form).Code, path)
	}
	// wes operates web: shop is not his to see, follow or deploy.
	wes := a.login(t, "wes")
	require.NotContains(t, wes.Get("/apps").Body, "shop")
	require.Equal(t, http.StatusForbidden, wes.Get("/apps/shop").Code)
	require.Equal(t, http.StatusForbidden, wes.Get("/apps/shop/deployments/"+id).Code)
	require.Equal(t, http.StatusForbidden, wes.Get("/apps/shop/deployments/"+id+"/events").Code)
	require.Equal(t, http.StatusForbidden, wes.Get("/apps/shop/render").Code)
	require.Equal(t, http.StatusForbidden, wes.Post("/apps/shop/deploy", url.Values{"image": {"registry.example.com/shop:3"}}).Code)
	require.Equal(t, http.StatusForbidden, wes.Post("/apps/shop/rollback", url.Values{"to_revision": {"1"}}).Code)
	// Nothing changed.
	require.Len(t, a.history(t, "shop"), 2)
	got, err := a.apps.GetApp(a.admin, &deployv1.GetAppRequest{Name: "shop"})
	require.NoError(t, err)
	require.Equal(t, "registry.example.com/shop:2", got.GetApp().GetImage())
	list, err = a.apps.ListApps(a.admin, &deployv1.ListAppsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetApps(), 1)

	// olga rolls back to revision 1: revision 3, with 1's image.
	back := a.ended(t, started(t, olga.Post("/apps/shop/rollback", url.Values{"to_revision": {"1"}}), "shop"))
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, back.GetStatus(), back.GetReason())
	require.Equal(t, int64(3), back.GetRevision())
	require.Equal(t, "registry.example.com/shop:1", back.GetImage())
	p = olga.Get("/apps/shop")
	require.Contains(t, p.Body, `<tr id="revision-3">`)
	require.Contains(t, p.Body, "rollback to revision 1")

	// A bad image for a deploy: the API's field error, nothing deployed.
	p = olga.Post("/apps/shop/deploy", url.Values{"image": {"not an image"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "image: ")
	require.Len(t, a.history(t, "shop"), 3)

	// In Traditional Chinese.
	olga.Lang = "zh-TW"
	p = olga.Get("/apps/shop")
	require.Contains(t, p.Body, "部署紀錄")
	require.Contains(t, p.Body, "成功")
	olga.Lang = ""

	// Deleted, as olga asked.
	p = olga.Post("/apps/shop/delete", url.Values{"delete_resources": {"on"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, "/apps?done=done.apps.deleted", p.Header.Get("Location"))
	require.Contains(t, olga.Get(p.Header.Get("Location")).Body, "The app is deleted.")
	list, err = a.apps.ListApps(a.admin, &deployv1.ListAppsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetApps())
}

// TestConsoleAppsWizardInBrowser is the onboarding wizard in a real
// Chromium on a real control plane: a field the API refuses is marked at
// its step with what was typed kept; the fixed app is previewed and
// deployed, and its steps stream onto the open page until it is rolled
// out (kwok makes the pods ready), without a reload.
func TestConsoleAppsWizardInBrowser(t *testing.T) {
	a := startAppsConsole(t)
	tab := browser.New(t)
	text := func(sel string) string { return textOf(tab, sel) }
	tab.Do(30*time.Second,
		signIn(a.base+"/apps", "olga", `table#apps`),
		chromedp.Click(chromedp.CSS(`a[href="/apps/new"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form#wizard`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "Cart_Web"),
		chromedp.SendKeys(chromedp.CSS(`input[name=display_name]`), "Cart"),
		chromedp.SendKeys(chromedp.CSS(`input[name=image]`), "registry.example.com/cart:1"),
		chromedp.SendKeys(chromedp.CSS(`textarea[name=env]`), "LOG_LEVEL=info"),
		chromedp.Submit(chromedp.CSS(`form#wizard`)),
		chromedp.WaitVisible(chromedp.CSS(`#step-1.has-error .field-error[data-field=name]`)),
	)
	require.Equal(t, "registry.example.com/cart:1", browser.Get(tab, chromedp.Value(chromedp.CSS(`input[name=image]`))))
	require.Equal(t, "LOG_LEVEL=info", browser.Get(tab, chromedp.Value(chromedp.CSS(`textarea[name=env]`))))
	wizardShot := tab.Screenshot("apps-wizard")

	tab.Do(30*time.Second,
		chromedp.SetValue(chromedp.CSS(`input[name=name]`), "cart"),
		chromedp.Submit(chromedp.CSS(`form#wizard`)),
		chromedp.WaitVisible(chromedp.CSS(`pre#manifest`)),
	)
	require.Contains(t, text("pre#manifest"), "image: registry.example.com/cart:1")
	require.Contains(t, text("p.done"), "The app is registered")
	previewShot := tab.Screenshot("apps-preview")

	// Deploy, with the cluster's nodes cordoned: the rollout waits for
	// room, so the deployment's page is open while it runs. Uncordoned,
	// the pods start, and the page follows to the end without a reload.
	cordon(t, true)
	t.Cleanup(func() { cordon(t, false) })
	tab.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`form.deploy-now button`)),
		chromedp.WaitVisible(chromedp.CSS(`#deployment [data-step=wait_rollout].step-running`)),
	)
	require.True(t, browser.Get(tab, chromedp.Evaluate[bool](`window.vigilTestMarker = true`)))
	require.Equal(t, "running", text("#deployment-status"))
	require.Equal(t, "done", browser.Get(tab, chromedp.Evaluate[string](`document.querySelector('[data-step="deploy_app"] .badge').textContent`)))
	runningShot := tab.Screenshot("apps-deployment-running")
	cordon(t, false)
	tab.Do(2*time.Minute, chromedp.WaitVisible(chromedp.CSS(`#deployment .progress[data-status=succeeded]`)))
	require.True(t, browser.Get(tab, chromedp.Evaluate[bool](`window.vigilTestMarker === true`)), "the steps came without a reload")
	require.Equal(t, "done", browser.Get(tab, chromedp.Evaluate[string](`document.querySelector('[data-step="wait_rollout"] .badge').textContent`)))
	deployShot := tab.Screenshot("apps-deployment")
	h := a.history(t, "cart")
	require.Len(t, h, 1)
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, h[0].GetStatus())

	// The app's page, and the list.
	tab.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`main a[href="/apps/cart"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table#history tr#revision-1`)),
	)
	appShot := tab.Screenshot("apps-app")
	// On a phone: one column, nothing wider than the screen.
	tab.Do(30*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`table#history tr#revision-1`)),
	)
	require.Equal(t, "none", browser.Get(tab, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#history thead")).display`)))
	require.True(t, browser.Get(tab, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling")
	phoneShot := tab.Screenshot("apps-app-phone")
	tab.Do(30*time.Second, chromedp.EmulateViewport(1280, 900))
	tab.Do(30*time.Second,
		chromedp.Navigate(a.base+"/apps"),
		chromedp.WaitVisible(chromedp.CSS(`tr#app-cart .dep-succeeded`)),
	)
	listShot := tab.Screenshot("apps-list")
	for _, p := range []string{wizardShot, previewShot, runningShot, deployShot, appShot, phoneShot, listShot} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}
}

// cordon marks the shared cluster's nodes (un)schedulable: cordoned, a
// rollout waits for room.
func cordon(t *testing.T, on bool) {
	t.Helper()
	cs := testkit.SharedKube(t).Clientset
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, nodes.Items)
	patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%t}}`, on)
	for _, n := range nodes.Items {
		_, err := cs.CoreV1().Nodes().Patch(context.Background(), n.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
	}
}
