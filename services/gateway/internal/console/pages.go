package console

import (
	"maps"
	"net/url"
)

// pager is the paging of a list the API pages with its tokens: a link
// to the first page, shown once past it, and one to the next page, if
// any, each keeping the list's filters. The "pages" part
// (templates/parts/pages.html) shows it; a page's data embeds it.
type pager struct {
	Paged       bool
	First, Next string
}

// newPager is the pager of the list at path filtered by query, on the
// page whose token is page ("": the first); next is the API's token of
// the page after it ("": none).
func newPager(path string, query url.Values, page, next string) pager {
	p := pager{Paged: page != "", First: withQuery(path, query)}
	if next != "" {
		q := maps.Clone(query)
		if q == nil {
			q = url.Values{}
		}
		q.Set("page", next)
		p.Next = withQuery(path, q)
	}
	return p
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// filterQuery is the query of a list's filters: each one set, by its
// parameter's name.
func filterQuery(filters map[string]string) url.Values {
	q := url.Values{}
	for k, v := range filters {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}
