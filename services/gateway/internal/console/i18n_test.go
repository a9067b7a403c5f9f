package console

import (
	"maps"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// Every word of the console is there in every language it speaks.
func TestCatalogue(t *testing.T) {
	en := slices.Sorted(maps.Keys(catalogue["en"]))
	require.NotEmpty(t, en)
	for _, lang := range languages {
		require.Equal(t, en, slices.Sorted(maps.Keys(catalogue[lang])), "the words of %s", lang)
	}
}

// A key two files define, or a language the console does not speak, is
// refused when the console starts, not found on a page.
func TestCatalogueRefusesClashes(t *testing.T) {
	for name, files := range map[string]fstest.MapFS{
		"twice": {
			"w/a.json": {Data: []byte(`{"en": {"x": "one"}}`)},
			"w/b.json": {Data: []byte(`{"en": {"x": "two"}}`)},
		},
		"language": {"w/a.json": {Data: []byte(`{"fr": {"x": "un"}}`)}},
		"broken":   {"w/a.json": {Data: []byte(`{"en": `)}},
	} {
		_, err := loadCatalogue(files, "w")
		require.Error(t, err, name)
	}
	c, err := loadCatalogue(fstest.MapFS{
		"w/a.json": {Data: []byte(`{"en": {"x": "one"}, "zh-TW": {"x": "一"}}`)},
		"w/b.json": {Data: []byte(`{"en": {"y": "two"}}`)},
	}, "w")
	require.NoError(t, err)
	require.Equal(t, map[string]map[string]string{"en": {"x": "one", "y": "two"}, "zh-TW": {"x": "一"}}, c)
}
