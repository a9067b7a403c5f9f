package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

var (
	fence    = regexp.MustCompile("(?s)```.*?```")
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headings = regexp.MustCompile(`(?m)^#+ (.*)$`)
)

// Every relative link of the README and docs/ leads to a file that exists
// and, with a #fragment, to a heading of that page: a page split or a
// heading renamed breaks no reader's path.
func TestDocsLinksResolve(t *testing.T) {
	t.Parallel()
	pages, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	sub, err := filepath.Glob("../../docs/*/*.md")
	require.NoError(t, err)
	pages = append(append(pages, sub...), "../../README.md")
	var broken []string
	for _, page := range pages {
		text, err := os.ReadFile(page)
		require.NoError(t, err)
		for _, m := range mdLink.FindAllStringSubmatch(fence.ReplaceAllString(string(text), ""), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, fragment, _ := strings.Cut(link, "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), path)
			}
			if _, err := os.Stat(target); err != nil {
				broken = append(broken, page+": "+link+": no such file")
				continue
			}
			if fragment != "" && strings.HasSuffix(target, ".md") && !hasAnchor(t, target, fragment) {
				broken = append(broken, page+": "+link+": no such heading")
			}
		}
	}
	require.Empty(t, broken)
}

// hasAnchor reports whether page has a heading whose GitHub anchor is
// fragment: lower case, punctuation dropped, spaces as hyphens.
func hasAnchor(t *testing.T, page, fragment string) bool {
	t.Helper()
	text, err := os.ReadFile(page)
	require.NoError(t, err)
	for _, h := range headings.FindAllStringSubmatch(fence.ReplaceAllString(string(text), ""), -1) {
		anchor := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(h[1]))
		if anchor == fragment {
			return true
		}
	}
	return false
}
