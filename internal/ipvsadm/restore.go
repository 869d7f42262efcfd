package ipvsadm

import (
	"bufio"
	"io"
	"strings"
)

// restoreLines reads -R's input as ipvsadm's config_stream_read does: each
// line is split at spaces, tabs and carriage returns; the word "ipvsadm"
// is dropped wherever it is, so lines of "ipvsadm -A ..." work too; blank
// lines are skipped. A word starting with '#' begins a comment that runs
// to the end of the line (ipvsadm documents this but its check never
// fires).
type restoreLines struct {
	r *bufio.Reader
	// line is the number of the line next returned last (1-based).
	line int
}

func newRestoreLines(r io.Reader) *restoreLines {
	return &restoreLines{r: bufio.NewReader(r)}
}

// next returns the words of the next line that has any, or false at the
// end of the input.
func (l *restoreLines) next() ([]string, bool) {
	for {
		line, err := l.r.ReadString('\n')
		if line == "" && err != nil {
			return nil, false
		}
		l.line++
		var words []string
		for _, w := range strings.FieldsFunc(line, func(r rune) bool {
			return r == ' ' || r == '\t' || r == '\r' || r == '\n'
		}) {
			if strings.HasPrefix(w, "#") {
				break
			}
			if w != "ipvsadm" {
				words = append(words, w)
			}
		}
		if len(words) > 0 {
			return words, true
		}
		if err != nil {
			return nil, false
		}
	}
}
