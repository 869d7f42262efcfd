package config

import (
	"io/fs"
	"path"
	"strings"
)

// The reader follows keepalived's lib/parser.c: a line is decommented
// ('#' and '!' outside double quotes start a comment, "\#" and "\!" are
// literal), a line starting "@id" is kept only when id is the config id
// ("@^id": only when it is not), "$NAME=VALUE" defines a parameter (a value
// ending in '\' continues on the following lines), "$NAME" and "${NAME}"
// are replaced, "include PATTERN" splices files in, and every '{' and '}'
// outside quotes is a token of its own.

type tokKind uint8

const (
	tWord tokKind = iota
	tLBrace
	tRBrace
	tEOL
)

type token struct {
	kind tokKind
	text string
	pos  Pos
}

// maxIncludeDepth bounds include nesting; deeper is almost surely a loop.
const maxIncludeDepth = 16

// maxExpand bounds recursive parameter substitution.
const maxExpand = 16

// maxLineLen is keepalived's MAXBUF-like limit on a line after
// substitution, so a self-doubling definition cannot exhaust memory.
const maxLineLen = 64 << 10

type definition struct {
	lines     []string // one entry for single-line definitions
	multiline bool
}

type lexer struct {
	*diag
	fsys     fs.FS
	configID string
	defs     map[string]*definition
	toks     []token
	depth    int

	pending *definition // multiline definition being collected

	expansions int // total substitutions, bounded by maxExpansions
}

// maxExpansions bounds all substitutions of one load, so definitions that
// multiply each other cannot make it run for ever.
const maxExpansions = 100000

func newLexer(d *diag, fsys fs.FS, configID string) *lexer {
	return &lexer{diag: d, fsys: fsys, configID: configID, defs: map[string]*definition{}}
}

// file reads one file's text. name is the name positions carry.
func (l *lexer) file(name string, data string) {
	l.pending = nil
	lines := strings.Split(data, "\n")
	for i, raw := range lines {
		pos := Pos{File: name, Line: i + 1}
		raw = strings.TrimRight(raw, "\r")
		line, cont, ok := decomment(raw)
		if !ok {
			l.errorf(pos, "unterminated quote: close the \" or escape it")
			continue
		}
		if l.pending != nil {
			if line != "" {
				l.pending.lines = append(l.pending.lines, line)
			}
			if !cont || raw == "" {
				l.pending = nil
			}
			continue
		}
		l.logical(name, line, cont, pos, 0)
	}
	l.pending = nil
}

func (l *lexer) logical(file, line string, cont bool, pos Pos, depth int) {
	if line == "" {
		return
	}
	if line[0] == '@' {
		rest, keep := l.conditional(line)
		if !keep {
			return
		}
		line = rest
	}
	if line[0] == '$' && depth == 0 {
		if name, value, ok := splitDefinition(line); ok {
			def := &definition{multiline: cont}
			if value != "" {
				def.lines = []string{value}
			}
			l.defs[name] = def
			if cont {
				l.pending = def
			}
			return
		}
	}
	if cont {
		l.warnf(pos, "line ends with '\\': keepalived continues lines only in $NAME= definitions; the '\\' is ignored")
	}
	if strings.HasPrefix(line, "~SEQ") || strings.HasPrefix(line, "~LST") {
		l.errorf(pos, "%s blocks are not supported by govs: write the generated lines out", line[:4])
		return
	}
	if strings.Contains(line, "$") {
		expanded, changed := l.expand(file, line, pos)
		if changed {
			l.expansions++
			if l.expansions == maxExpansions {
				l.errorf(pos, "more than %d parameter substitutions: check for definitions that refer to each other", maxExpansions)
			}
			if l.expansions >= maxExpansions {
				return
			}
			if depth >= maxExpand {
				l.errorf(pos, "parameter substitution nested more than %d deep: check for a definition that refers to itself", maxExpand)
				return
			}
			for _, e := range expanded {
				l.logical(file, strings.TrimSpace(e), false, pos, depth+1)
			}
			return
		}
	}
	l.emit(file, line, pos)
}

// conditional handles "@id rest" and "@^id rest".
func (l *lexer) conditional(line string) (string, bool) {
	neg := strings.HasPrefix(line, "@^")
	id := line[1:]
	if neg {
		id = line[2:]
	}
	i := strings.IndexAny(id, " \t")
	if i < 0 {
		return "", false
	}
	rest := strings.TrimLeft(id[i:], " \t")
	id = id[:i]
	match := l.configID != "" && id == l.configID
	if match == neg {
		return "", false
	}
	return rest, rest != ""
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

// splitDefinition recognises "$NAME=VALUE" (spaces allowed before '=').
func splitDefinition(line string) (name, value string, ok bool) {
	if len(line) < 3 || !isNameStart(line[1]) {
		return "", "", false
	}
	i := 2
	for i < len(line) && isNameChar(line[i]) {
		i++
	}
	name = line[1:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", "", false
	}
	return name, strings.TrimSpace(rest[1:]), true
}

// expand replaces the first defined parameter in line. It returns the
// resulting lines (several for a multiline definition) and whether it
// replaced anything; the caller rescans for further parameters.
func (l *lexer) expand(file, line string, pos Pos) ([]string, bool) {
	for i := 0; i < len(line); i++ {
		if line[i] != '$' || i+1 >= len(line) {
			continue
		}
		braces := line[i+1] == '{'
		j := i + 1
		if braces {
			j++
		}
		if j >= len(line) || !isNameStart(line[j]) {
			continue
		}
		k := j
		for k < len(line) && isNameChar(line[k]) {
			k++
		}
		name := line[j:k]
		end := k
		if braces {
			if k >= len(line) || line[k] != '}' {
				continue
			}
			end = k + 1
		} else if k < len(line) && !strings.ContainsRune(" \t,)", rune(line[k])) {
			continue
		}
		var value []string
		switch def, ok := l.defs[name]; {
		case ok:
			value = def.lines
		case name == "_PWD":
			value = []string{path.Dir(file)}
		case name == "_INSTANCE":
			value = []string{l.configID}
		case name == "_HASH":
			value = []string{"#"}
		case name == "_BANG":
			value = []string{"!"}
		default:
			continue // keepalived leaves undefined parameters as they are
		}
		prefix, suffix := line[:i], line[end:]
		if len(value) == 0 {
			return []string{prefix + suffix}, true
		}
		out := make([]string, len(value))
		copy(out, value)
		out[0] = prefix + out[0]
		out[len(out)-1] += suffix
		total := 0
		for _, s := range out {
			total += len(s)
		}
		if total > maxLineLen {
			l.errorf(pos, "parameter substitution makes the line longer than %d bytes", maxLineLen)
			return nil, true
		}
		return out, true
	}
	return nil, false
}

// decomment strips comments and surrounding blanks. cont reports a
// trailing '\'; ok is false for an unterminated double quote.
func decomment(raw string) (line string, cont, ok bool) {
	s := strings.TrimLeft(raw, " \t")
	var b strings.Builder
	quote := false
loop:
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
			b.WriteByte(c)
		case c == '\\':
			if i+1 >= len(s) {
				cont = true
				break loop
			}
			if !quote && (s[i+1] == '#' || s[i+1] == '!') {
				b.WriteByte(s[i+1])
			} else {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
		case !quote && (c == '#' || c == '!'):
			break loop
		default:
			b.WriteByte(c)
		}
	}
	if quote {
		return "", false, false
	}
	return strings.TrimRight(b.String(), " \t\f\v"), cont, true
}

// includeKinds are keepalived's include keywords; all but "include" and
// "includer" make a pattern that matches nothing an error.
var includeKinds = map[string]bool{
	"include": false, "includer": false,
	"includem": true, "includew": true, "includeb": true, "includea": true,
}

// emit splits a final line into words and braces, or follows an include.
func (l *lexer) emit(file, line string, pos Pos) {
	words := splitWords(line)
	if len(words) == 2 && words[0].kind == tWord && words[1].kind == tWord {
		if strict, ok := includeKinds[words[0].text]; ok {
			l.include(file, words[1].text, strict, pos)
			return
		}
	}
	for _, w := range words {
		w.pos = pos
		l.toks = append(l.toks, w)
	}
	l.toks = append(l.toks, token{kind: tEOL, pos: pos})
}

// splitWords is keepalived's alloc_strvec after read_line's brace split:
// words are separated by blanks, a double-quoted string is one word
// without its quotes, and '{' and '}' outside quotes are words of their own.
func splitWords(s string) []token {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r' || c == '\n':
			i++
		case c == '{':
			out = append(out, token{kind: tLBrace, text: "{"})
			i++
		case c == '}':
			out = append(out, token{kind: tRBrace, text: "}"})
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				out = append(out, token{kind: tWord, text: s[i+1:]})
				return out
			}
			out = append(out, token{kind: tWord, text: s[i+1 : i+1+j]})
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\f\v\r\n\"{}", rune(s[j])) {
				j++
			}
			out = append(out, token{kind: tWord, text: s[i:j]})
			i = j
		}
	}
	return out
}

// fsName maps a displayed file name onto a name in l.fsys: absolute names
// lose their leading slash (the file system is rooted at "/").
func fsName(name string) string {
	n := strings.TrimPrefix(path.Clean(name), "/")
	if n == "" {
		return "."
	}
	return n
}

// include reads the files pattern matches, relative to the directory of
// the including file as keepalived resolves them, in sorted order.
func (l *lexer) include(from, pattern string, strict bool, pos Pos) {
	if l.fsys == nil {
		l.errorf(pos, "include %s: no file system to read it from", pattern)
		return
	}
	if l.depth >= maxIncludeDepth {
		l.errorf(pos, "include %s: includes nested more than %d deep; does a file include itself?", pattern, maxIncludeDepth)
		return
	}
	display := pattern
	if !path.IsAbs(pattern) {
		display = path.Join(path.Dir(from), pattern)
	}
	matches, err := fs.Glob(l.fsys, fsName(display))
	if err != nil {
		l.errorf(pos, "include %s: bad pattern: %v", pattern, err)
		return
	}
	n := 0
	for _, m := range matches {
		st, err := fs.Stat(l.fsys, m)
		if err != nil || st.IsDir() {
			continue
		}
		data, err := fs.ReadFile(l.fsys, m)
		if err != nil {
			l.errorf(pos, "include %s: %v", pattern, err)
			continue
		}
		name := m
		if path.IsAbs(display) {
			name = "/" + m
		}
		n++
		l.depth++
		saved := l.pending
		l.file(name, string(data))
		l.pending = saved
		l.depth--
	}
	if n == 0 {
		if strict {
			l.errorf(pos, "include %s: no config files matched; create the file or use 'include' to allow none", pattern)
		} else {
			l.warnf(pos, "include %s: no config files matched", pattern)
		}
	}
}
