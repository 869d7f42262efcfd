package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Option configures Load and Parse.
type Option func(*options)

type options struct {
	fsys     fs.FS
	configID string
}

// WithFS reads the main file (Load) and included files from fsys instead
// of the operating system. Names are mapped onto fsys without their
// leading "/", so "/etc/keepalived/x.conf" is "etc/keepalived/x.conf" in
// an fstest.MapFS.
func WithFS(fsys fs.FS) Option { return func(o *options) { o.fsys = fsys } }

// WithConfigID sets keepalived's config id (its -i option) that "@id"
// conditional lines are compared with. The default is none: only "@^id"
// lines are kept.
func WithConfigID(id string) Option { return func(o *options) { o.configID = id } }

// Load reads the keepalived configuration at path and the files it
// includes. It returns the configuration and its warnings, or every error
// found (joined, each "file:line: message" and wrapping ErrInvalid); I/O
// failures on the main file are returned wrapped as they are.
func Load(path string, opts ...Option) (*Config, []Warning, error) {
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	if o.fsys == nil {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", path, err)
		}
		path = filepath.ToSlash(abs)
		o.fsys = os.DirFS("/")
	}
	data, err := fs.ReadFile(o.fsys, fsName(path))
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	return parse(path, string(data), o)
}

// Parse reads a configuration from r; name is the file name positions
// carry and includes are resolved against. Includes need WithFS.
func Parse(name string, r io.Reader, opts ...Option) (*Config, []Warning, error) {
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	return parse(name, string(data), o)
}

// ParseTree reads the statement tree of a configuration without
// interpreting keywords: for tools and tests.
func ParseTree(name string, r io.Reader, opts ...Option) ([]*Node, []Warning, error) {
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	d := &diag{}
	l := newLexer(d, o.fsys, o.configID)
	l.file(name, string(data))
	nodes := buildTree(d, l.toks)
	return nodes, d.warns, errors.Join(d.errs...)
}

func parse(name, data string, o options) (*Config, []Warning, error) {
	d := &diag{}
	l := newLexer(d, o.fsys, o.configID)
	l.file(name, data)
	nodes := buildTree(d, l.toks)
	dec := &decoder{diag: d}
	dec.cfg.Global.Garp = unsetGarp()
	dec.top(nodes)
	dec.defaults()
	if len(d.errs) > 0 {
		return nil, d.warns, errors.Join(d.errs...)
	}
	cfg := dec.cfg
	return &cfg, d.warns, nil
}

// Check is `govsd -t`: it loads the configuration at path and converts it
// to IPVS services, returning the warnings and nil, or every error joined.
func Check(path string, opts ...Option) ([]Warning, error) {
	cfg, warns, err := Load(path, opts...)
	if err != nil {
		return warns, err
	}
	if _, err := cfg.IPVS(); err != nil {
		return warns, err
	}
	return warns, nil
}
