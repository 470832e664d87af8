package config

import (
	"strconv"
	"strings"
)

// lineIndex maps key paths ("server.listen", "routes[2].preset") to the
// line that sets them. BurntSushi/toml keeps key positions private, so this
// is a small scanner over the text: it follows [table] and [[array]]
// headers and key = value lines, skipping over values that span lines.
// Keys inside inline tables are not indexed; a lookup falls back to the
// nearest enclosing key that is.
type lineIndex map[string]int

func indexLines(text string) lineIndex {
	idx := lineIndex{}
	arrayLen := map[string]int{} // resolved array-table path -> elements seen
	prefix := ""
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(stripComment(lines[i]))
		if line == "" {
			continue
		}
		switch {
		case strings.HasPrefix(line, "[["):
			name := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "[["), "]]"))
			path := resolveArrays(splitKey(name), arrayLen)
			n := arrayLen[path]
			arrayLen[path] = n + 1
			prefix = path + "[" + strconv.Itoa(n) + "]"
			idx.set(prefix, lineNo)
			idx.set(path, lineNo)
		case strings.HasPrefix(line, "["):
			name := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "["), "]"))
			prefix = resolveArrays(splitKey(name), arrayLen)
			idx.set(prefix, lineNo)
		default:
			key, value, ok := cutAssignment(line)
			if !ok {
				continue
			}
			path := strings.Join(splitKey(key), ".")
			if prefix != "" {
				path = prefix + "." + path
			}
			idx.set(path, lineNo)
			// A value that opens more brackets or a multi-line string than
			// it closes continues on the following lines.
			state := scanValue(value, valueState{})
			for state.open() && i+1 < len(lines) {
				i++
				state = scanValue(lines[i], state)
			}
		}
	}
	return idx
}

func (idx lineIndex) set(path string, line int) {
	if _, seen := idx[path]; !seen {
		idx[path] = line
	}
}

// line returns the line of path, or of its nearest indexed parent; 0 when
// nothing is known (the key came from defaults).
func (idx lineIndex) line(path string) int {
	for path != "" {
		if n, ok := idx[path]; ok {
			return n
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			return 0
		}
		path = path[:cut]
	}
	return 0
}

// resolveArrays turns a header's dotted name into a path in which every
// segment that names an array of tables carries the index of its current
// (last) element: [[routes]] then [routes.extra] is routes[N].extra.
func resolveArrays(parts []string, arrayLen map[string]int) string {
	path := ""
	for i, p := range parts {
		if path != "" {
			path += "."
		}
		path += p
		if n, ok := arrayLen[path]; ok && i < len(parts)-1 {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return path
}

// splitKey splits a dotted key, honouring quoted parts.
func splitKey(key string) []string {
	var parts []string
	var cur strings.Builder
	quote := byte(0)
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// cutAssignment splits "key = value" at the first '=' outside quotes.
func cutAssignment(line string) (key, value string, ok bool) {
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return strings.TrimSpace(line[:i]), line[i+1:], true
		}
	}
	return "", "", false
}

// stripComment removes a trailing # comment that is not inside a string.
func stripComment(line string) string {
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == '\\' && quote == '"':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return line[:i]
		}
	}
	return line
}

// valueState tracks what a multi-line value still has open.
type valueState struct {
	depth     int    // open [ and {
	multiline string // `"""` or `'''` while inside a multi-line string
}

func (s valueState) open() bool { return s.depth > 0 || s.multiline != "" }

func scanValue(text string, s valueState) valueState {
	for i := 0; i < len(text); i++ {
		if s.multiline != "" {
			if strings.HasPrefix(text[i:], s.multiline) {
				i += 2
				s.multiline = ""
			}
			continue
		}
		switch c := text[i]; c {
		case '#':
			return s
		case '[', '{':
			s.depth++
		case ']', '}':
			s.depth--
		case '"', '\'':
			if strings.HasPrefix(text[i:], strings.Repeat(string(c), 3)) {
				s.multiline = strings.Repeat(string(c), 3)
				i += 2
				continue
			}
			// Skip a one-line string.
			for i++; i < len(text) && text[i] != c; i++ {
				if c == '"' && text[i] == '\\' {
					i++
				}
			}
		}
	}
	return s
}
