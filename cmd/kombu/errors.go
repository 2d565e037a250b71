package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/codec"
)

// Exit codes. Scripts may rely on them; docs/cli.md lists them.
const (
	exitOK          = 0
	exitFailure     = 1   // the broker refused or failed an operation
	exitUsage       = 2   // bad input: flags, URL, scheme, file, body
	exitUnreachable = 3   // the broker could not be reached (refused credentials are 1)
	exitNotFound    = 4   // the queue or exchange does not exist
	exitEmpty       = 5   // get found no message; consume --count got fewer before --timeout
	exitInterrupted = 130 // stopped by SIGINT or SIGTERM (128+2, as shells report it)
)

// usageError marks bad input given by the user.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// emptyError says that fewer messages than asked for were there.
type emptyError struct{ msg string }

func (e *emptyError) Error() string { return e.msg }

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var ue *usageError
	var ee *emptyError
	var unreachable *unreachableError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.As(err, &ue), errors.Is(err, kombu.ErrInvalidURL), errors.Is(err, kombu.ErrInvalidArgument),
		errors.Is(err, codec.ErrUnknownSerializer), errors.Is(err, codec.ErrUnknownCompression),
		errors.Is(err, codec.ErrEncode):
		return exitUsage
	case isCobraUsage(err):
		return exitUsage
	case errors.As(err, &ee), errors.Is(err, kombu.ErrEmpty):
		return exitEmpty
	case errors.Is(err, kombu.ErrNotFound):
		return exitNotFound
	case errors.Is(err, kombu.ErrAccessRefused):
		return exitFailure // the broker answered: retrying will not help
	case errors.As(err, &unreachable), errors.Is(err, kombu.ErrConnectionLost), errors.Is(err, context.DeadlineExceeded):
		return exitUnreachable
	}
	return exitFailure
}

var errInterrupted = errors.New("interrupted")

// secrets collects the passwords of every URL the command was given, so
// that no message printed can repeat one, whatever produced its text.
type secrets struct{ words []string }

func (s *secrets) addURL(raw string) {
	for _, part := range strings.Split(raw, ";") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil || u.User == nil {
			// An unparsable URL may still hold "user:pass@": take the
			// text between the first ':' after "//" and the last '@'.
			s.addRaw(part)
			continue
		}
		if pw, ok := u.User.Password(); ok {
			s.add(pw)
			s.add(url.QueryEscape(pw))
			s.add(url.PathEscape(pw))
		}
		for k, vs := range u.Query() {
			if looksSecret(k) {
				for _, v := range vs {
					s.add(v)
				}
			}
		}
	}
}

func (s *secrets) addRaw(part string) {
	i := strings.Index(part, "://")
	if i < 0 {
		return
	}
	rest := part[i+3:]
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return
	}
	if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
		s.add(rest[c+1 : at])
	}
}

func (s *secrets) add(w string) {
	if len(w) >= 2 { // a one-character password would mask every such character
		s.words = append(s.words, w)
	}
}

// mask replaces every known secret in text with "**".
func (s *secrets) mask(text string) string {
	for _, w := range s.words {
		text = strings.ReplaceAll(text, w, "**")
	}
	return text
}

func looksSecret(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "secret", "token", "key", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// oneLine flattens an error text for the single line printed on failure.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// isCobraUsage recognises the errors cobra makes itself for a command line
// it cannot parse (it has no error types for them).
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command ", "unknown flag", "unknown shorthand flag", "invalid argument ", "flag needs an argument", "accepts ", "requires "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
