package db

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err, from a database call, says that
// Postgres could not do the work for now rather than that the work is
// wrong: the server could not be reached or dropped the connection, is
// shutting down or starting up, ran out of connections, memory or disk,
// or picked the transaction as a deadlock or serialization victim. The
// same work tried again once the server is back succeeds, so such an
// error is never a reason to give the work up (dead-letter an event,
// split a batch to find a culprit) -- only to wait and try again.
//
// Everything else (a constraint violation, a syntax error, a statement
// timeout, a cancelled context) is about the work and is not Unavailable.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return unavailableState(pgErr.Code)
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	// pgconn's own errors about the connection (reading or writing it
	// failed, it timed out) all say whether a retry is safe; the cause
	// inside tells an outage from a cancellation.
	var fromConn interface{ SafeToRetry() bool }
	if !errors.As(err, &fromConn) {
		return false
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded)
}

// unavailableState reports whether a SQLSTATE says the server cannot serve
// for now (https://www.postgresql.org/docs/current/errcodes-appendix.html).
func unavailableState(code string) bool {
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now: starting up, shutting down, recovering
		"57P05", // idle_session_timeout
		"40001", // serialization_failure
		"40P01", // deadlock_detected
		"58030": // io_error
		return true
	}
	switch code[:min(2, len(code))] {
	case "08", // connection_exception
		"53": // insufficient_resources: disk full, out of memory, too many connections
		return true
	}
	return false
}
