package llm_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/llmtest"
)

// endless serves status and then writes until the client hangs up (or
// limit bytes), and reports how much it wrote.
func endless(t *testing.T, status int, limit int) (url string, wrote <-chan int) {
	t.Helper()
	ch := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		n := 0
		for n < limit {
			m, err := w.Write(chunk)
			n += m
			if err != nil {
				break
			}
		}
		ch <- n
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

func TestPostBoundsTheAnswer(t *testing.T) {
	t.Parallel()
	const limit = 256 << 20

	t.Run("answer", func(t *testing.T) {
		t.Parallel()
		url, wrote := endless(t, http.StatusOK, limit)
		raw, err := llm.Post(t.Context(), http.DefaultClient, "test", url, nil, struct{}{}, nil)
		require.Nil(t, raw)
		llmtest.CheckError(t, err, engine.ErrUnusable)
		require.ErrorContains(t, err, "answer larger than")
		select {
		case n := <-wrote:
			require.Less(t, n, limit, "the client read to the end")
		case <-time.After(30 * time.Second):
			t.Fatal("the server is still writing")
		}
	})

	t.Run("refusal", func(t *testing.T) {
		t.Parallel()
		url, _ := endless(t, http.StatusServiceUnavailable, limit)
		_, err := llm.Post(t.Context(), http.DefaultClient, "test", url, nil, struct{}{}, nil)
		llmtest.CheckStatusError(t, err, http.StatusServiceUnavailable)
	})

	t.Run("at the limit", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(bytes.Repeat([]byte(" "), llm.MaxResponseBytes))
		}))
		t.Cleanup(srv.Close)
		raw, err := llm.Post(t.Context(), http.DefaultClient, "test", srv.URL, nil, struct{}{}, nil)
		require.NoError(t, err)
		require.Len(t, raw, llm.MaxResponseBytes)
	})
}

func TestReported(t *testing.T) {
	t.Parallel()
	got, err := llm.Reported("test", "m-1", []int{1000, 300, 200}, []int{250, 50})
	require.NoError(t, err)
	require.Equal(t, llm.Response{Model: "m-1", InputTokens: 1500, OutputTokens: 300}, got)

	for _, tt := range []struct {
		name          string
		model         string
		input, output []int
	}{
		{name: "negative", input: []int{-1}},
		{name: "absurd", output: []int{1 << 40}},
		{name: "sum that overflows", input: []int{1<<63 - 1, 1<<63 - 1}},
		{name: "sum past the bound", output: []int{1 << 29, 1 << 29, 1 << 29}},
		{name: "long model name", model: strings.Repeat("m", 1000)},
	} {
		got, err := llm.Reported("test", tt.model, tt.input, tt.output)
		llmtest.CheckError(t, err, engine.ErrUnusable)
		require.Equal(t, llm.Response{}, got, tt.name)
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	require.Equal(t, "short", llm.Excerpt(" short\n"))
	require.Equal(t, "a?b", llm.Excerpt("a\xffb"))
	long := llm.Excerpt(strings.Repeat("x", 511) + "é" + strings.Repeat("x", 100))
	require.Equal(t, strings.Repeat("x", 511)+"...", long, "no half character")
}

// FuzzExcerpt: whatever is quoted, the excerpt is short, valid UTF-8 and
// the start of it.
func FuzzExcerpt(f *testing.F) {
	f.Add("")
	f.Add(strings.Repeat("é", 400))
	f.Add(strings.Repeat("x", 511) + "\xe2\x82")
	f.Add(strings.Repeat("\x80", 600))
	f.Fuzz(func(t *testing.T, s string) {
		got := llm.Excerpt(s)
		require.LessOrEqual(t, len(got), 512+len("..."))
		require.True(t, utf8.ValidString(got))
		if utf8.ValidString(s) {
			require.True(t, strings.HasPrefix(strings.TrimSpace(s), strings.TrimSuffix(got, "...")), "%q is not the start of %q", got, s)
		}
	})
}
