package bus_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
)

// busDoc is the page that tells operators and integrators who may publish
// and consume what.
const busDoc = "../../docs/bus.md"

// The permissions table in docs/bus.md is the one in permissions.go: every
// NATS user but admin has a row, and each row lists exactly the subjects
// the user may publish and consume. A permission changed without the page
// (or the page without the permission) fails here.
func TestBusDocMatchesPermissions(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile(busDoc)
	require.NoError(t, err)
	rows := permissionRows(t, string(page))

	want := map[string][3][]string{}
	for _, r := range bus.Roles {
		want[r.User] = [3][]string{sorted(r.Publishes), sorted(r.Consumes), sorted(r.Watches)}
	}
	require.Equal(t, want, rows, "the table under %q in %s differs from bus.Roles (pkg/bus/permissions.go): fix the page", permissionsHeading, busDoc)
}

// permissionsHeading opens the table TestBusDocMatchesPermissions reads.
const permissionsHeading = "## Who publishes and consumes what"

var backticked = regexp.MustCompile("`([^`]+)`")

// permissionRows reads the first table after permissionsHeading: per user
// (first column), the subjects in backticks of the second (publishes),
// third (consumes) and fourth (watches live) columns, sorted.
func permissionRows(t *testing.T, page string) map[string][3][]string {
	t.Helper()
	_, after, ok := strings.Cut(page, "\n"+permissionsHeading+"\n")
	require.True(t, ok, "%s has no heading %q", busDoc, permissionsHeading)
	rows := map[string][3][]string{}
	inTable := false
	for line := range strings.SplitSeq(after, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		require.Len(t, cells, 4, "%s: a permissions row has four columns (user, publishes, consumes, watches): %s", busDoc, line)
		user := backticked.FindStringSubmatch(cells[0])
		if user == nil { // the header or the separator
			continue
		}
		_, dup := rows[user[1]]
		require.False(t, dup, "%s: two rows for user %s", busDoc, user[1])
		rows[user[1]] = [3][]string{subjects(cells[1]), subjects(cells[2]), subjects(cells[3])}
	}
	require.NotEmpty(t, rows, "%s: no table under %q", busDoc, permissionsHeading)
	return rows
}

func subjects(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return sorted(out)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}
