package testkit

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	valid := regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
	tests := []struct {
		testName   string
		wantPrefix string
	}{
		{testName: "TestRepo/Update_ok", wantPrefix: "test_testrepo_update_ok_"},
		{testName: "TestX/" + strings.Repeat("Long", 30), wantPrefix: "test_testx_longlong"},
		{testName: "TestÜnicode#1", wantPrefix: "test_test_nicode_1_"},
	}
	for _, tt := range tests {
		t.Run(tt.testName, func(t *testing.T) {
			t.Parallel()
			name := databaseName(tt.testName)
			require.True(t, strings.HasPrefix(name, tt.wantPrefix), name)
			require.LessOrEqual(t, len(name), 63)
			require.Regexp(t, valid, name)
			require.NotEqual(t, name, databaseName(tt.testName), "names are unique")
		})
	}
}
