package useraction

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/parley-chatops/parley/internal/redact"
)

// secretRef is a header value taken from the environment or a mounted
// file, never from the action file itself. An environment variable is
// read once, when the file loads (missing: the file does not load); a file
// is read at every request, so a rotated Kubernetes Secret takes effect
// without a restart.
type secretRef struct {
	env, file string
	format    string // "%s" replaced by the secret, e.g. "Bearer %s"
	value     string // from env, read at load
	unread    bool   // loaded with Options.NoSecrets
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// maxSecretFile bounds a secret file read at run time.
const maxSecretFile = 64 << 10

// parseSecret reads {secret: {env: X} | {file: P}, format: "Bearer %s"}.
func (l *loader) parseSecret(n *yaml.Node, what string, o *Options) (*secretRef, bool) {
	s := &secretRef{format: "%s"}
	ok := true
	var secretNode *yaml.Node
	l.mapping(n, what, []string{"secret", "format"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "secret":
			secretNode = v
			l.mapping(v, what+".secret", []string{"env", "file"}, func(key string, _, v *yaml.Node) {
				val, good := l.text(v, what+".secret."+key)
				if !good {
					ok = false
					return
				}
				if key == "env" {
					s.env = val
				} else {
					s.file = val
				}
			})
		case "format":
			f, good := l.text(v, what+".format")
			if !good {
				ok = false
				return
			}
			rest := strings.ReplaceAll(strings.Replace(f, "%s", "", 1), "%%", "")
			if !strings.Contains(f, "%s") || strings.Contains(rest, "%") {
				l.errorf(v, `%s.format: %q must hold %%s once, where the secret goes (e.g. "Bearer %%s")`, what, f)
				ok = false
				return
			}
			if redact.Redact(strings.Replace(f, "%s", "x", 1)) != strings.Replace(f, "%s", "x", 1) {
				l.errorf(v, "%s.format: looks like it holds a credential itself; the secret goes in %%s", what)
				ok = false
				return
			}
			s.format = f
		}
	})
	switch {
	case !ok:
		return nil, false
	case secretNode == nil:
		l.errorf(n, "%s: want {secret: {env: VAR}} or {secret: {file: PATH}}", what)
		return nil, false
	case (s.env == "") == (s.file == ""):
		l.errorf(secretNode, "%s.secret: give env or file, exactly one", what)
		return nil, false
	case s.env != "" && !envNameRE.MatchString(s.env):
		l.errorf(secretNode, "%s.secret.env: %q is not an environment variable name", what, s.env)
		return nil, false
	case s.file != "" && !filepath.IsAbs(s.file):
		l.errorf(secretNode, "%s.secret.file: %q: give the absolute path of the mounted secret, e.g. /var/run/secrets/cdn/token", what, s.file)
		return nil, false
	case o.NoSecrets:
		s.unread = true
	case s.env != "":
		s.value = strings.TrimSpace(o.getenv(s.env))
		if s.value == "" {
			l.errorf(secretNode, "%s.secret.env: environment variable %s is empty or unset", what, s.env)
			return nil, false
		}
	default:
		if _, err := s.read(); err != nil {
			l.errorf(secretNode, "%s.secret.file: %v", what, err)
			return nil, false
		}
	}
	return s, true
}

// read returns the secret's current value, without the format.
func (s *secretRef) read() (string, error) {
	if s.unread {
		return "", fmt.Errorf("secrets were not loaded (%s): this command does not run actions", s.where())
	}
	if s.env != "" {
		return s.value, nil
	}
	f, err := os.Open(s.file)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than %d bytes", s.file, maxSecretFile)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", s.file)
	}
	return v, nil
}

// display is the header value as shown to people: the secret as <secret>.
func (s *secretRef) display() string { return strings.Replace(s.format, "%s", "<secret>", 1) }

// where names the secret's source for messages: "env CDN_TOKEN".
func (s *secretRef) where() string {
	if s.env != "" {
		return "env " + s.env
	}
	return "file " + s.file
}
