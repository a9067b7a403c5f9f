package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServerOptions configure an embedded NATS server with JetStream.
type ServerOptions struct {
	// Host and Port to listen on; Port -1 picks a free one.
	Host string
	Port int
	// StoreDir holds JetStream's files.
	StoreDir string
	// SyncAlways makes JetStream fsync every write before it acknowledges
	// it. Without it, an acknowledged write lives only in the page cache
	// until the next periodic sync (every two minutes by default) and a
	// power loss can lose it. Vigil turns it on by default.
	SyncAlways bool
	// Users are the only clients the server lets in, each with its role's
	// permissions (Roles; admin may do anything). Without them the server
	// is open to every client: for tests of the bus alone.
	Users  []Credentials
	Logger *slog.Logger
}

// RunServer starts an embedded NATS server and waits until it accepts
// connections. Shut it down with Shutdown and WaitForShutdown.
func RunServer(opts ServerOptions) (*server.Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("bus: embedded NATS needs a store directory")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	so := &server.Options{
		ServerName: "vigil",
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		SyncAlways: opts.SyncAlways,
		NoSigs:     true,
		NoLog:      opts.Logger == nil,
	}
	if len(opts.Users) > 0 {
		users, err := serverUsers(opts.Users)
		if err != nil {
			return nil, err
		}
		so.Users = users
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded NATS: %w", err)
	}
	if opts.Logger != nil {
		ns.SetLoggerV2(&serverLogger{log: opts.Logger.With("component", "nats-server")}, false, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("bus: embedded NATS did not become ready in 30s")
	}
	return ns, nil
}

type serverLogger struct{ log *slog.Logger }

// The server formats its own lines; they go out as the "detail" of one
// static message so log queries can still match on msg.
func (l *serverLogger) Noticef(format string, v ...any) {
	l.log.Info("nats server", "detail", fmt.Sprintf(format, v...))
}

func (l *serverLogger) Warnf(format string, v ...any) {
	l.log.Warn("nats server", "detail", fmt.Sprintf(format, v...))
}

func (l *serverLogger) Fatalf(format string, v ...any) {
	l.log.Error("nats server", "detail", fmt.Sprintf(format, v...))
}

func (l *serverLogger) Errorf(format string, v ...any) {
	l.log.Error("nats server", "detail", fmt.Sprintf(format, v...))
}
func (l *serverLogger) Debugf(string, ...any) {}
func (l *serverLogger) Tracef(string, ...any) {}

// Connect connects to NATS at natsURL as creds (anonymously when creds.User is
// empty) and returns the connection and a JetStream context that fails an
// async publish whose ack does not arrive within 10s. The connection
// reconnects for ever. Replies come under the user's own inbox prefix
// (InboxPrefix), the only one its permissions let it read.
func Connect(ctx context.Context, natsURL, name string, creds Credentials, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.WarnContext(ctx, "nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.InfoContext(ctx, "nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		// A permission the server refuses (a publish, a subscription)
		// arrives asynchronously; without a handler it would go unheard.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.WarnContext(ctx, "nats error", "user", creds.User, "subscription", subject, "error", err)
		}),
	}, creds.natsOptions()...)
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: connect to NATS at %s as %q: %w", redactURL(natsURL), creds.User, err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(10*time.Second),
	)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("bus: NATS at %s has no JetStream: %w", redactURL(natsURL), err)
	}
	return nc, js, nil
}

// redactURL hides a password given in url's user info.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
