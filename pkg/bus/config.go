package bus

import (
	"fmt"
	"strings"
)

// Config renders the configuration of an external nats-server for Vigil
// (deploy/nats/nats.conf): one node with JetStream that fsyncs every write,
// and the users of Roles with their permissions, as the embedded server has
// them. Each user's password is read from the server's environment
// (PasswordVar): a password, or its bcrypt hash (`nats server passwd`).
func Config() []byte {
	var b strings.Builder
	b.WriteString(`# NATS server for Vigil: a single node with JetStream, locked.
#
# Generated from pkg/bus/permissions.go; do not edit by hand. After changing
# the roles there, regenerate it with
#   go test ./pkg/bus -run TestShippedConfig -update
#
# Vigil's streams carry every state change, so JetStream fsyncs each write
# (sync_interval: always) rather than the default every two minutes: an
# acknowledged event must survive a host crash.
#
# Every client logs in as a user below and may publish and subscribe only
# what its role allows (docs/bus.md). Each user's password comes from
# the server's environment, e.g. VIGIL_NATS_GATEWAY_PASSWORD: the password
# itself, or its bcrypt hash (nats server passwd, with the nats CLI) so the
# server never holds it. nats-server refuses to start when one of them is
# unset. nats-server 2.15 or later reads any password from
# openssl rand -hex 24 or openssl rand -base64 24 as it is; one of digits
# alone, or digits and a size unit (12K), would read as a number.
#
# The ports below may be changed without editing this file (nats-server
# -c nats.conf -p 4222 -m 8222); the store is VIGIL_NATS_STORE_DIR from the
# environment, e.g. /data in a container (nats-server lets neither a flag
# nor a default stand for a store_dir this file sets).

server_name: vigil-nats

# Clients (the Vigil services, direct publishers, the admin).
port: 4222

# Monitoring: /healthz?js-enabled-only=true is the compose healthcheck. It
# needs no login and shows connections and subjects (never payloads): do not
# publish this port outside the host or cluster network.
http_port: 8222

# Every Vigil stream has an age and a size limit; JetStream reserves the
# size limits when it creates the streams (6 GiB in all by default: see
# VIGIL_STREAM_MAX_BYTES). A max_file_store, if set, must leave room for them.
jetstream {
  store_dir: $VIGIL_NATS_STORE_DIR
  sync_interval: always
}

authorization {
  users: [
`)
	fmt.Fprintf(&b, "    # Creates and updates the streams (vigil nats provision); the operator's\n")
	fmt.Fprintf(&b, "    # own login for the nats CLI. No service uses it.\n")
	fmt.Fprintf(&b, "    {user: %s, password: $%s}\n", UserAdmin, PasswordVar(UserAdmin))
	for _, r := range Roles {
		g := r.grant()
		b.WriteString("\n")
		switch {
		case r.External:
			fmt.Fprintf(&b, "    # Direct alert publishers (replies under %s.).\n", InboxPrefix(r.User))
		default:
			fmt.Fprintf(&b, "    # vigil serve %s\n", r.User)
		}
		fmt.Fprintf(&b, "    {\n      user: %s\n      password: $%s\n      permissions: {\n", r.User, PasswordVar(r.User))
		writeSubjects(&b, "publish", g.publish)
		writeSubjects(&b, "subscribe", g.subscribe)
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String())
}

func writeSubjects(b *strings.Builder, what string, subjects []string) {
	fmt.Fprintf(b, "        %s: {allow: [\n", what)
	for _, s := range subjects {
		fmt.Fprintf(b, "          %q\n", s)
	}
	b.WriteString("        ]}\n")
}
