package chaos_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// allowContract marks a statement that contracts the schema on purpose:
// the comment names why nothing released reads what it removes
// (docs/development.md, "Schema migrations across a rolling upgrade").
const allowContract = "vigil:contract"

// contracting are the statements an old release running beside the new
// one cannot survive: they drop, rename, or tighten what it reads or
// writes.
var contracting = []struct {
	what string
	re   *regexp.Regexp
}{
	{"DROP TABLE", regexp.MustCompile(`\bDROP\s+TABLE\b`)},
	{"DROP COLUMN", regexp.MustCompile(`\bDROP\s+COLUMN\b`)},
	{"RENAME", regexp.MustCompile(`\bRENAME\b`)},
	{"ALTER COLUMN ... TYPE", regexp.MustCompile(`\bALTER\s+(COLUMN\s+)?\S+\s+(SET\s+DATA\s+)?TYPE\b`)},
	{"SET NOT NULL", regexp.MustCompile(`\bSET\s+NOT\s+NULL\b`)},
	{"ADD COLUMN ... NOT NULL without a DEFAULT", regexp.MustCompile(`\bADD\s+(COLUMN\s+)?[^,]*\bNOT\s+NULL\b`)},
}

var lineComment = regexp.MustCompile(`--[^\n]*`)

// contractions are the contracting statements of a goose migration's Up
// section, each as "what: statement", except those marked allowContract.
func contractions(sql string) []string {
	up, _, _ := strings.Cut(sql, "-- +goose Down")
	var out []string
	for stmt := range strings.SplitSeq(up, ";") {
		if strings.Contains(stmt, allowContract) {
			continue
		}
		code := strings.Join(strings.Fields(strings.ToUpper(lineComment.ReplaceAllString(stmt, ""))), " ")
		for _, c := range contracting {
			if !c.re.MatchString(code) {
				continue
			}
			// A new column may be NOT NULL when it has a default: old
			// writers leave it out and get the default.
			if c.what == "ADD COLUMN ... NOT NULL without a DEFAULT" && hasDefaultPerColumn(code) {
				continue
			}
			out = append(out, c.what+": "+code)
		}
	}
	return out
}

// hasDefaultPerColumn says whether every NOT NULL column an ALTER TABLE
// adds has a DEFAULT.
func hasDefaultPerColumn(code string) bool {
	for part := range strings.SplitSeq(code, ",") {
		if strings.Contains(part, "NOT NULL") && strings.Contains(part, "ADD") && !strings.Contains(part, "DEFAULT") {
			return false
		}
	}
	return true
}

func TestContractions(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{name: "new table and nullable column", sql: "-- +goose Up\nCREATE TABLE x (id int NOT NULL);\nALTER TABLE y ADD COLUMN z text;\nCREATE INDEX CONCURRENTLY y_z ON y (z);\n-- +goose Down\nDROP TABLE x;\n"},
		{name: "not null with default", sql: "-- +goose Up\nALTER TABLE y ADD COLUMN a int NOT NULL DEFAULT 0, ADD COLUMN b text;\n"},
		{name: "drop table", sql: "-- +goose Up\nDROP TABLE x;\n", want: []string{"DROP TABLE: DROP TABLE X"}},
		{name: "drop column", sql: "-- +goose Up\nALTER TABLE y DROP COLUMN z;\n", want: []string{"DROP COLUMN: ALTER TABLE Y DROP COLUMN Z"}},
		{name: "rename", sql: "-- +goose Up\nALTER TABLE y RENAME COLUMN a TO b;\n", want: []string{"RENAME: ALTER TABLE Y RENAME COLUMN A TO B"}},
		{name: "type", sql: "-- +goose Up\nALTER TABLE y ALTER COLUMN a TYPE bigint;\n", want: []string{"ALTER COLUMN ... TYPE: ALTER TABLE Y ALTER COLUMN A TYPE BIGINT"}},
		{name: "set not null", sql: "-- +goose Up\nALTER TABLE y ALTER COLUMN a SET NOT NULL;\n", want: []string{"SET NOT NULL: ALTER TABLE Y ALTER COLUMN A SET NOT NULL"}},
		{name: "not null without default", sql: "-- +goose Up\nALTER TABLE y ADD COLUMN a int NOT NULL, ADD COLUMN b int NOT NULL DEFAULT 1;\n", want: []string{"ADD COLUMN ... NOT NULL without a DEFAULT: ALTER TABLE Y ADD COLUMN A INT NOT NULL, ADD COLUMN B INT NOT NULL DEFAULT 1"}},
		{name: "in a comment", sql: "-- +goose Up\n-- we never DROP TABLE here\nCREATE TABLE x (id int);\n"},
		{name: "allowed", sql: "-- +goose Up\n-- vigil:contract: nothing reads y.z since the release before last\nALTER TABLE y DROP COLUMN z;\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, contractions(tc.sql))
		})
	}
}

// TestMigrationsExpandOnly checks the migrations added since the previous
// release (deploy/previous-release) only expand the schema, and that no
// released migration changed: during a rolling upgrade the previous
// release runs on the new schema.
func TestMigrationsExpandOnly(t *testing.T) {
	ref := previousRelease(t)
	root := testkit.RepoRoot(t)
	released := map[string]bool{}
	for line := range strings.Lines(git(t, "ls-tree", "-r", "--name-only", ref)) {
		released[strings.TrimSpace(line)] = true
	}
	var added, kept []string
	for _, top := range []string{"pkg", "services"} {
		require.NoError(t, filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".sql") || filepath.Base(filepath.Dir(path)) != "migrations" {
				return err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			if released[rel] {
				kept = append(kept, rel)
			} else {
				added = append(added, rel)
			}
			return nil
		}))
	}
	require.NotEmpty(t, kept, "the released migrations were found")
	t.Logf("%d migrations since %s", len(added), ref)
	for _, rel := range added {
		sql, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err)
		assert.Empty(t, contractions(string(sql)), "%s contracts the schema the previous release still uses: expand now, contract a release later, or mark a justified statement with a %q comment", rel, allowContract)
	}
	changed := strings.Fields(git(t, "diff", "--name-only", ref, "--", "*/migrations/*.sql"))
	changed = slices.DeleteFunc(changed, func(p string) bool { return !released[p] })
	assert.Empty(t, changed, "released migrations are never edited: add a new one")
}
