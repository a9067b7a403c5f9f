package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxSecretBytes is the deploy API's limit on a secret's value: a bigger
// file is refused here, before it is sent.
const maxSecretBytes = 32 << 10

// input is where the CLI reads what should not be on its command line:
// secret values from files, the environment or stdin. Tests replace it.
type input struct {
	stdin io.Reader
	// terminal tells whether stdin is a terminal; readPassword reads a
	// line from it without echo.
	terminal     func() bool
	readPassword func() ([]byte, error)
	prompt       io.Writer
	lookupEnv    func(string) (string, bool)
	readFile     func(string) ([]byte, error)
	// stdinUsed: stdin that is not a terminal holds one value.
	stdinUsed bool
}

func osInput() *input {
	fd := int(os.Stdin.Fd())
	return &input{
		stdin:        os.Stdin,
		terminal:     func() bool { return term.IsTerminal(fd) },
		readPassword: func() ([]byte, error) { return term.ReadPassword(fd) },
		prompt:       os.Stderr,
		lookupEnv:    os.LookupEnv,
		readFile:     readFileLimited,
	}
}

// readFileLimited reads a file of at most maxSecretBytes (plus a line
// ending).
func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretBytes+3))
	if err != nil {
		return nil, err
	}
	if len(trimLineEnding(b)) > maxSecretBytes {
		return nil, fmt.Errorf("larger than %d KiB", maxSecretBytes>>10)
	}
	return b, nil
}

// trimLineEnding strips one trailing line ending ("\n" or "\r\n"), the
// one `echo` and editors put at the end of a file: secrets become
// environment variables, where a trailing newline is a password that
// never matches. To keep one, end the file with two.
func trimLineEnding(b []byte) []byte {
	if b, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		return bytes.TrimSuffix(b, []byte("\r"))
	}
	return b
}

// secrets resolves --secret and --secret-from-env into the secrets map:
//
//	--secret KEY=VALUE        the value itself (seen in the process list and shell history)
//	--secret KEY=@FILE        the contents of FILE, less one trailing line ending
//	--secret KEY=-            read from stdin: prompted for, without echo, on a terminal;
//	                          otherwise all of stdin, less one trailing line ending
//	--secret-from-env KEY=VAR the value of the environment variable VAR
//
// A value read from a file, stdin or the environment must not be empty: an
// empty one is taken for a mistake (an unset variable, the wrong file).
func (in *input) secrets(specs, fromEnv []string) (map[string]string, error) {
	if len(specs) == 0 && len(fromEnv) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(specs)+len(fromEnv))
	set := func(flag, k, v string) error {
		if _, dup := out[k]; dup {
			return fmt.Errorf("%s %s: given twice", flag, k)
		}
		out[k] = v
		return nil
	}
	for _, spec := range specs {
		k, v, ok := strings.Cut(spec, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--secret %q: want KEY=VALUE, KEY=@FILE or KEY=-", redact(spec))
		}
		var err error
		switch {
		case v == "-":
			v, err = in.fromStdin(k)
		case strings.HasPrefix(v, "@"):
			v, err = in.fromFile(v[1:])
		}
		if err != nil {
			return nil, fmt.Errorf("--secret %s=%s: %w", k, sourceOf(spec), err)
		}
		if err := set("--secret", k, v); err != nil {
			return nil, err
		}
	}
	for _, spec := range fromEnv {
		k, name, ok := strings.Cut(spec, "=")
		if !ok || k == "" || name == "" {
			return nil, fmt.Errorf("--secret-from-env %q: want KEY=VARIABLE", spec)
		}
		v, ok := in.lookupEnv(name)
		switch {
		case !ok:
			return nil, fmt.Errorf("--secret-from-env %s: environment variable %s is not set", spec, name)
		case v == "":
			return nil, fmt.Errorf("--secret-from-env %s: environment variable %s is empty", spec, name)
		}
		if err := set("--secret-from-env", k, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sourceOf is how an error names where a --secret value came from: the
// file or stdin, never a value.
func sourceOf(spec string) string {
	_, v, _ := strings.Cut(spec, "=")
	if v == "-" || strings.HasPrefix(v, "@") {
		return v
	}
	return "…"
}

// redact leaves a malformed --secret's text out of errors, in case it is
// a value with its key forgotten.
func redact(spec string) string {
	if len(spec) > 3 {
		return spec[:3] + "…"
	}
	return "…"
}

func (in *input) fromFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("want @FILE, a file name after @")
	}
	b, err := in.readFile(path)
	if err != nil {
		return "", err
	}
	b = trimLineEnding(b)
	if len(b) == 0 {
		return "", fmt.Errorf("%s is empty", path)
	}
	return string(b), nil
}

func (in *input) fromStdin(key string) (string, error) {
	var b []byte
	var err error
	if in.terminal() {
		fmt.Fprintf(in.prompt, "Value of secret %s (not shown): ", key)
		b, err = in.readPassword()
		fmt.Fprintln(in.prompt)
	} else {
		if in.stdinUsed {
			return "", errors.New("stdin holds one value: read the others from files (KEY=@FILE) or the environment (--secret-from-env)")
		}
		in.stdinUsed = true
		b, err = readLimited(bufio.NewReader(in.stdin))
		b = trimLineEnding(b)
	}
	if err != nil {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty value on stdin")
	}
	return string(b), nil
}

// token is the API token: from --token-file (or VIGIL_TOKEN_FILE) when
// given, otherwise VIGIL_TOKEN.
func (in *input) token(file string) (string, error) {
	if file == "" {
		// Empty without VIGIL_TOKEN: the caller uses the stored session.
		t, _ := in.lookupEnv("VIGIL_TOKEN")
		return t, nil
	}
	b, err := in.readFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("--token-file: %s is empty", file)
	}
	return t, nil
}
