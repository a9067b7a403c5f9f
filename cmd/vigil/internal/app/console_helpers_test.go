package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
)

// consoleVigil is a running Vigil for a console test: its console's
// address, a connection to its API and the bootstrap admin's context to
// see through the API what the console changed.
type consoleVigil struct {
	*vigil
	base  string
	conn  *grpc.ClientConn
	admin context.Context
}

// startConsole runs Vigil (with changing its options first, as
// startVigil) and creates users, each with the password password(name).
func startConsole(t *testing.T, users []*gatewayv1.User, with ...func(*app.Options)) *consoleVigil {
	t.Helper()
	v := startVigil(t, with...)
	conn, err := grpc.NewClient(v.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c := &consoleVigil{
		vigil: v, base: "http://" + v.HTTPAddr(), conn: conn,
		admin: metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken),
	}
	addUsers(c.admin, t, conn, users...)
	return c
}

// login is a console client signed in as name, over HTTP.
func (c *consoleVigil) login(t *testing.T, name string) *browser.Client {
	t.Helper()
	return consoleClient(t, c.base, name)
}

// addUsers creates users through the API as admin (a context carrying
// the bootstrap admin's token), each with the password password(name).
func addUsers(admin context.Context, t testing.TB, conn grpc.ClientConnInterface, users ...*gatewayv1.User) {
	t.Helper()
	for _, u := range users {
		_, err := gatewayv1.NewUserServiceClient(conn).CreateUser(admin, &gatewayv1.CreateUserRequest{User: u, Password: password(u.GetName())})
		require.NoError(t, err)
	}
}

// consoleClient is a console client of the console at base signed in as
// name (password(name)), over HTTP.
func consoleClient(t *testing.T, base, name string) *browser.Client {
	t.Helper()
	c := browser.NewClient(t, base)
	require.Equal(t, http.StatusSeeOther, c.Login(name, password(name)).Code)
	return c
}

// signIn signs a browser tab in as name: it opens url (a console page,
// which asks for a login first), logs in with password(name) and waits
// for ready, a CSS selector of the page the console then shows.
func signIn(url, name, ready string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password(name)),
		chromedp.Submit(chromedp.CSS(`form[action="/login"]`)),
		chromedp.WaitVisible(chromedp.CSS(ready)),
	)
}

// textOf is the text of the first visible element sel in the tab,
// trimmed, once there is one. It is read in one step in the page, so a
// live page that puts a fresh copy of the element in place meanwhile
// (its stream opened, an event came) gives the fresh one's text, not an
// error for a node gone.
func textOf(tab *browser.Tab, sel string) string {
	tab.Do(30*time.Second, chromedp.WaitVisible(chromedp.CSS(sel)))
	return strings.TrimSpace(browser.Get(tab, chromedp.Evaluate[string](fmt.Sprintf(`(() => {
		const el = [...document.querySelectorAll(%q)].find(e => e.offsetWidth || e.offsetHeight || e.getClientRects().length);
		return el ? el.innerText : "";
	})()`, sel))))
}

// answerEachDialog answers every JavaScript dialog (a data-confirm
// form's question) the tab opens during the steps that follow it in the
// same Do, accepting or dismissing it, and sends its message to asked
// when asked has room. The subscription ends with that Do's context.
func answerEachDialog(accept bool, asked chan<- string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
		go func() {
			for ev, err := range dialogs {
				if err != nil {
					return
				}
				select {
				case asked <- ev.Message:
				default:
				}
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
			}
		}()
		return chromedp.Void{}, nil
	}
}
